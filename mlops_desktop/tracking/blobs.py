"""Content-addressed artifact storage: files are copied once into objects/ab/cdef... by sha256 and de-duplicated."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from mlops_desktop.errors import UsageError
from mlops_desktop.store.db import classify_sqlite_error


def blob_path(objects: Path, digest: str) -> Path:
    return objects / digest[:2] / digest[2:]


def put_file(objects: Path, source: Path) -> tuple[str, int]:
    """Copy ``source`` into the object store (hashing while copying); returns (sha256, size)."""
    if not source.is_file():
        raise UsageError(f"artifact {source} is not a file")
    objects.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=objects, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            while True:
                block = src.read(1 << 20)
                if not block:
                    break
                digest.update(block)
                out.write(block)
                size += len(block)
            out.flush()
            os.fsync(out.fileno())
        hexdigest = digest.hexdigest()
        target = blob_path(objects, hexdigest)
        if target.exists():
            os.unlink(tmp_name)
        else:
            target.parent.mkdir(exist_ok=True)
            os.chmod(tmp_name, 0o444)
            os.replace(tmp_name, target)
        return hexdigest, size
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        mapped = classify_sqlite_error(exc, objects)
        raise (mapped or exc) from None


def export_blob(objects: Path, digest: str, destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(blob_path(objects, digest), destination)
    return destination

