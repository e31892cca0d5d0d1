"""Packed encoding of metric points: one chunk holds many points of one series as encoded numpy columns.

A row-per-point table costs ~40-250 bytes and one B-tree insert per point; a chunk costs ~8 bytes per point and one
insert per thousands of points. Columns are encoded independently and each blob starts with a codec byte:
  steps:  ARANGE (consecutive integers: 8 bytes for the whole chunk) or ZDELTA (zlib of int64 deltas)
  ts:     ZDELTA (millisecond timestamps of a flush are mostly equal, so their deltas compress to almost nothing)
  values: RAW float64 (random doubles do not compress; raw keeps reads at memory speed)
"""

from __future__ import annotations

import zlib

import numpy as np

RAW = 0
ZDELTA = 1
ARANGE = 2

CHUNK_MAX_POINTS = 65_536
# A tail chunk smaller than this is rewritten with new points appended, so live logging in small flushes does not
# leave thousands of tiny chunks; larger tails are left alone and a new chunk starts.
TAIL_MERGE_POINTS = 1_024


def encode_int64(values: np.ndarray) -> bytes:
    values = np.ascontiguousarray(values, dtype=np.int64)
    n = values.shape[0]
    if n and (n == 1 or bool(np.all(np.diff(values) == 1))):
        return bytes([ARANGE]) + values[:1].tobytes()
    deltas = np.empty_like(values)
    if n:
        deltas[0] = values[0]
        np.subtract(values[1:], values[:-1], out=deltas[1:])
    return bytes([ZDELTA]) + zlib.compress(deltas.tobytes(), 1)


def decode_int64(blob: bytes, n: int) -> np.ndarray:
    codec = blob[0]
    if codec == ARANGE:
        start = int(np.frombuffer(blob, dtype=np.int64, count=1, offset=1)[0])
        return np.arange(start, start + n, dtype=np.int64)
    if codec == ZDELTA:
        deltas = np.frombuffer(zlib.decompress(blob[1:]), dtype=np.int64)
        return np.cumsum(deltas, dtype=np.int64)
    if codec == RAW:
        return np.frombuffer(blob, dtype=np.int64, offset=1).copy()
    raise ValueError(f"unknown int codec {codec}")


def encode_float64(values: np.ndarray) -> bytes:
    return bytes([RAW]) + np.ascontiguousarray(values, dtype=np.float64).tobytes()


def decode_float64(blob: bytes) -> np.ndarray:
    if blob[0] != RAW:
        raise ValueError(f"unknown float codec {blob[0]}")
    return np.frombuffer(blob, dtype=np.float64, offset=1)
