"""Batch scoring: a model version over a lake dataset or a Parquet/CSV file, into a Parquet file or a new lake
dataset (with lineage to the input version and the model), in large lazy batches so memory stays bounded.

Each batch is read as Arrow columns, handed to the predictor as numpy columns (one model call per batch) and
written at once; the input columns are kept beside `prediction` (and `proba_<class>` for classifiers), so the
output joins back to its rows. The foundation of back-testing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import UsageError
from mlops_desktop.progress import Progress

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace

BATCH_ROWS = 262_144


@dataclass
class BatchResult:
    model: str
    serving_path: str
    rows: int
    batches: int
    seconds: float
    output: str  # a file path, or the lake version "name@N"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _arrow_type(dtype: str) -> Any:
    import pyarrow as pa

    if dtype == "string":
        return pa.string()
    if dtype == "bool":
        return pa.bool_()
    if dtype == "date":
        return pa.date32()
    if dtype.startswith("datetime"):
        return pa.timestamp("us")
    return pa.from_numpy_dtype(dtype)


def _source(ws: Workspace, input_path: str | None, dataset: str | None, signature: Any,
            batch_rows: int) -> tuple[Iterator[Any], int | None, list[str], Any]:
    """(record batches, total rows if known, label, the dataset version read or None)."""
    import pyarrow.parquet as pq

    if (input_path is None) == (dataset is None):
        raise UsageError("give exactly one of --input FILE and --dataset NAME[@VERSION]")
    version = None
    if dataset is not None:
        from mlops_desktop.data import catalog, lake

        version = catalog.resolve(ws.db, dataset)
        files = [str(p) for p in lake.data_files(ws, version)]
        total: int | None = version.row_count
        columns = list(version.schema)
    else:
        path = Path(input_path or "")
        if not path.is_file():
            raise UsageError(f"input file {path} does not exist")
        suffix = path.suffix.lower()
        if suffix in (".csv", ".tsv", ".txt"):
            return _csv_batches(path, signature, batch_rows), None, [], None
        if suffix not in (".parquet", ".pq"):
            raise UsageError(f"{path.name} is neither .parquet nor .csv")
        files = [str(path)]
        try:
            meta = pq.ParquetFile(path).metadata
        except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid & co for a damaged file
            raise UsageError(f"{path} is not a readable Parquet file: {exc}") from None
        total = meta.num_rows
        columns = list(meta.schema.names)
    missing = [c for c in signature.input_names if c not in columns]
    if missing:
        where = version.ref if version is not None else input_path
        raise UsageError(f"{where} lacks the model's input column(s) {', '.join(missing)}",
                         hint="the model expects: " + ", ".join(signature.input_names))

    def batches() -> Iterator[Any]:
        for f in files:
            yield from pq.ParquetFile(f).iter_batches(batch_size=batch_rows)

    return batches(), total, columns, version


def _csv_batches(path: Path, signature: Any, batch_rows: int) -> Iterator[Any]:
    import pyarrow.csv as pcsv

    types = {c.name: _arrow_type(c.dtype) for c in signature.inputs}
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 24),
                               parse_options=pcsv.ParseOptions(delimiter=delimiter),
                               convert_options=pcsv.ConvertOptions(column_types=types))
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    missing = [c for c in signature.input_names if c not in reader.schema.names]
    if missing:
        raise UsageError(f"{path} lacks the model's input column(s) {', '.join(missing)}")
    try:
        yield from reader
    except Exception as exc:  # noqa: BLE001 - a value that does not parse as its column's type
        raise UsageError(f"{path}: {str(exc).splitlines()[0]}",
                         hint="the model expects: " + ", ".join(f"{c.name} {c.dtype}" for c in signature.inputs)) \
            from None


def _columns(batch: Any, names: list[str]) -> dict[str, Any]:
    import numpy as np

    out = {}
    for name in names:
        col = batch.column(name)
        arr = col.to_numpy(zero_copy_only=False)
        if col.null_count and arr.dtype.kind in "iub":
            arr = np.where(col.is_null().to_numpy(zero_copy_only=False), np.nan, arr.astype("float64"))
        out[name] = arr
    return out


def _output_batch(batch: Any, result: dict[str, Any], classes: list[Any], keep: list[str]) -> Any:
    import numpy as np
    import pyarrow as pa

    arrays = [batch.column(c) for c in keep]
    names = list(keep)
    pred = np.asarray(result["prediction"])
    arrays.append(pa.array(pred.tolist() if pred.dtype.kind == "O" else pred))
    names.append("prediction")
    proba = result.get("probabilities")
    if proba is not None and classes and proba.shape[1] == len(classes):
        for i, cls in enumerate(classes):
            arrays.append(pa.array(np.ascontiguousarray(proba[:, i])))
            names.append(f"proba_{cls}")
    return pa.RecordBatch.from_arrays(arrays, names=names)


def predict_batch(ws: Workspace, ref: str, *, input_path: str | None = None, dataset: str | None = None,
                  output: str | None = None, into_dataset: str | None = None, keep: list[str] | None = None,
                  batch_rows: int = BATCH_ROWS, prefer_onnx: bool = True,
                  progress: Progress | None = None) -> BatchResult:
    """Score every row; write to `output` (.parquet) or, without one, a new version of a lake dataset."""
    import pyarrow.parquet as pq

    from mlops_desktop import registry

    progress = progress or Progress()
    if batch_rows < 1:
        raise UsageError("--batch-rows must be at least 1")
    if output and into_dataset:
        raise UsageError("give either -o FILE or --into-dataset NAME, not both")
    if output and Path(output).suffix.lower() not in (".parquet", ".pq"):
        raise UsageError(f"{output}: the output is written as Parquet; name it .parquet")
    mv = registry.resolve(ws, ref)
    predictor = registry.load_predictor(ws, mv, prefer_onnx=prefer_onnx)
    signature = predictor.signature
    batches, total, columns, version = _source(ws, input_path, dataset, signature, batch_rows)
    staging = None
    if output:
        target = Path(output)
    else:
        from mlops_desktop.data import catalog, lake

        name = catalog.check_name(into_dataset or f"scores_{mv.name.replace('-', '_')}")
        staging = lake.new_staging(ws)
        target = staging.data / f"00000-{staging.token}.parquet"
    classes = list(signature.classes)
    started = time.perf_counter()
    rows = count = 0
    writer = None
    tmp = target.with_name(target.name + ".partial")
    try:
        for batch in batches:
            progress.check()
            keep_cols = keep if keep is not None else [c for c in batch.schema.names]
            unknown = [c for c in keep_cols if c not in batch.schema.names]
            if unknown:
                raise UsageError(f"--keep names column(s) {', '.join(unknown)} that the input does not have")
            cols = _columns(batch, signature.input_names)
            try:
                result = predictor.predict(cols)
            except (ValueError, TypeError) as exc:
                raise UsageError(f"the model could not score rows {rows + 1}-{rows + batch.num_rows}: "
                                 f"{str(exc).splitlines()[0][:300]}") from None
            out = _output_batch(batch, result, classes, keep_cols)
            if writer is None:
                writer = pq.ParquetWriter(tmp, out.schema)
            writer.write_batch(out)
            rows += batch.num_rows
            count += 1
            progress.update(rows / total if total else 0.0, f"{rows:,} rows scored")
        if writer is None:
            raise UsageError("the input has no rows to score")
        writer.close()
        writer = None
        tmp.replace(target)
        if staging is not None:
            label = _commit(ws, staging, name, target, mv, version, rows, ref)
        else:
            label = str(target)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        if staging is not None:
            staging.discard()
        raise
    progress.update(1.0, f"{rows:,} rows scored")
    return BatchResult(mv.ref, predictor.serving_path, rows, count, round(time.perf_counter() - started, 3), label)


def _commit(ws: Workspace, staging: Any, name: str, part: Path, mv: Any, version: Any, rows: int, ref: str) -> str:
    import polars as pl

    from mlops_desktop.data import lake
    from mlops_desktop.data.catalog import NewVersion
    from mlops_desktop.data.contract import dtype_name

    schema = {k: dtype_name(v) for k, v in pl.read_parquet_schema(part).items()}
    content, size, _ = lake.finish_staging(staging)
    new = NewVersion(name=name, path="", schema=schema, row_count=rows, bytes=size, content_hash=content,
                     source={"kind": "predict", "model": mv.ref, "requested": ref, "bundle": mv.bundle_hash,
                             "input": version.ref if version is not None else None},
                     mode="derive", rows_in=rows, rows_rejected=0,
                     parent_ids=[version.id] if version is not None else [], producer_step=f"predict {mv.ref}")
    return lake.commit(ws, staging, new).ref
