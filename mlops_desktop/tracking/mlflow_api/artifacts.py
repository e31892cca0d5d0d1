"""MLflow's artifact helpers (log_dict, log_text, log_figure, log_image, log_table) and artifact listing/download.

Each helper writes a file into a temporary folder and hands it to a ``log(path, artifact_dir)`` function: the
active run's (fluent API) or any run's (MlflowClient).
"""

from __future__ import annotations

import json
import posixpath
import shutil
import struct
import tempfile
import time
import uuid as uuidlib
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.tracking.entities import Artifact
from mlops_desktop.tracking.mlflow_api.entities import FileInfo

LogFn = Callable[[Path, "str | None"], None]
WriteFn = Callable[[Path], Any]


def check_artifact_file(artifact_file: str) -> tuple[str, str | None]:
    """(file name, folder or None) of a run-relative artifact path; refuses absolute paths and '..'."""
    if not isinstance(artifact_file, str) or not artifact_file.strip():
        raise UsageError("artifact_file must be a non-empty run-relative path such as 'dir/file.json'")
    norm = posixpath.normpath(artifact_file.replace("\\", "/"))
    if norm.startswith(("/", "../")) or norm == "..":
        raise UsageError(f"artifact_file {artifact_file!r} must stay inside the run's artifacts",
                         hint="use a relative path such as 'plots/loss.png'")
    folder = posixpath.dirname(norm)
    return posixpath.basename(norm), (folder or None)


def _write_and_log(log: LogFn, artifact_file: str, write: WriteFn) -> None:
    name, folder = check_artifact_file(artifact_file)
    with tempfile.TemporaryDirectory(prefix="mlops-artifact-") as tmp:
        path = Path(tmp) / name
        write(path)
        log(path, folder)


def log_text(log: LogFn, text: str, artifact_file: str) -> None:
    _write_and_log(log, artifact_file, lambda p: p.write_text(text, encoding="utf-8"))


def log_dict(log: LogFn, dictionary: Any, artifact_file: str) -> None:
    """JSON, or YAML when the file ends in .yaml/.yml (as MLflow decides)."""
    if artifact_file.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise UsageError("logging a dict as YAML needs the PyYAML package",
                             hint="pip install pyyaml, or log it as .json") from None
        text = yaml.safe_dump(dictionary, default_flow_style=False, sort_keys=False)
    else:
        text = json.dumps(dictionary, indent=2, default=str)
    log_text(log, text, artifact_file)


def log_figure(log: LogFn, figure: Any, artifact_file: str, save_kwargs: dict[str, Any] | None = None) -> None:
    """A matplotlib figure (any format savefig knows) or a plotly figure (.html, or an image via kaleido)."""
    module = type(figure).__module__
    kwargs = dict(save_kwargs or {})
    if module.startswith("matplotlib"):
        _write_and_log(log, artifact_file, lambda p: figure.savefig(p, **kwargs))
    elif module.startswith("plotly"):
        if artifact_file.endswith(".html"):
            _write_and_log(log, artifact_file, lambda p: figure.write_html(str(p), **kwargs))
        else:
            _write_and_log(log, artifact_file, lambda p: figure.write_image(str(p), **kwargs))
    else:
        raise UsageError(f"log_figure takes a matplotlib or plotly figure, got {type(figure).__name__}")


def image_array(image: Any) -> Any:
    """An image as an HxW or HxWxC uint8 array (C in 1, 3, 4), from numpy or PIL, checked as MLflow checks it."""
    import numpy as np

    if hasattr(image, "save") and hasattr(image, "mode") and not isinstance(image, np.ndarray):  # PIL
        image = np.asarray(image)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise UsageError(f"an image is HxW or HxWxC with C in 1, 3 or 4; got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if arr.size and (np.nanmin(arr) < 0 or np.nanmax(arr) > 1):
            raise UsageError("a float image has values in [0, 1]")
        arr = np.rint(np.nan_to_num(arr) * 255).astype(np.uint8)
    elif arr.dtype.kind in "iub":
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise UsageError("an integer image has values in [0, 255]")
        arr = arr.astype(np.uint8)
    else:
        raise UsageError(f"an image holds numbers, got dtype {arr.dtype}")
    return arr


def png_bytes(arr: Any) -> bytes:
    """Encode a uint8 HxW / HxWx3 / HxWx4 array as PNG (zlib only, no imaging library needed)."""
    import numpy as np

    height, width = arr.shape[:2]
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    rows = np.ascontiguousarray(arr).reshape(height, width * channels)
    raw = np.hstack([np.zeros((height, 1), dtype=np.uint8), rows]).tobytes()

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def log_image(log: LogFn, image: Any, artifact_file: str | None = None, key: str | None = None,
              step: int | None = None, timestamp: int | None = None) -> str:
    """Save an image as PNG at ``artifact_file``, or, with ``key``, as one step of an image series under images/
    (MLflow's naming: images/KEY%step%STEP%timestamp%MS%UUID.png). Returns the artifact path."""
    if (artifact_file is None) == (key is None):
        raise UsageError("log_image needs exactly one of artifact_file or key")
    arr = image_array(image)
    if key is not None:
        if not key.strip():
            raise UsageError("an image key must not be empty")
        ms = int(time.time() * 1000) if timestamp is None else int(timestamp)
        safe = key.replace("/", "#")
        artifact_file = f"images/{safe}%step%{int(step or 0)}%timestamp%{ms}%{uuidlib.uuid4().hex}.png"
    assert artifact_file is not None
    _write_and_log(log, artifact_file, lambda p: p.write_bytes(png_bytes(arr)))
    return artifact_file


def table_frame(data: Any) -> Any:
    import pandas as pd

    if isinstance(data, dict):
        try:
            return pd.DataFrame(data)
        except ValueError:  # all scalars: one row
            return pd.DataFrame([data])
    if isinstance(data, pd.DataFrame):
        return data
    raise UsageError(f"log_table takes a pandas DataFrame or a dict of columns, got {type(data).__name__}")


def read_table(path: Path) -> Any:
    import pandas as pd

    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, orient="split")


def write_table(frame: Any, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="split", index=False, date_format="iso")


def check_table_file(artifact_file: str) -> None:
    if not artifact_file.endswith((".json", ".parquet")):
        raise UsageError(f"a table artifact ends in .json or .parquet, got {artifact_file!r}")


def logged_artifacts_tag(current: str | None, artifact_file: str) -> str:
    """The mlflow.loggedArtifacts tag after logging a table: a JSON list of {path, type}."""
    entries = json.loads(current) if current else []
    entry = {"path": artifact_file, "type": "table"}
    if entry not in entries:
        entries.append(entry)
    return json.dumps(entries)


# ---------------------------------------------------------------------------------------------- listing and download
def list_children(artifacts: Iterable[Artifact], path: str | None) -> list[FileInfo]:
    """The direct children of ``path`` among a run's artifacts (folders as is_dir, without a size), as MLflow lists."""
    prefix = (path or "").strip("/")
    files: dict[str, FileInfo] = {}
    for a in artifacts:
        if prefix:
            if a.path == prefix:
                continue  # listing a file lists nothing, as in MLflow's local artifact repository
            if not a.path.startswith(prefix + "/"):
                continue
            rest = a.path[len(prefix) + 1:]
        else:
            rest = a.path
        head, _, tail = rest.partition("/")
        child = f"{prefix}/{head}" if prefix else head
        files[child] = FileInfo(child, True, None) if tail else FileInfo(child, False, a.size)
    return [files[k] for k in sorted(files)]


def download(artifacts: list[Artifact], blob_of: Callable[[Artifact], Path], path: str, dst: Path) -> Path:
    """Copy the file ``path`` or every file below the folder ``path`` to ``dst``; returns the local path."""
    path = path.strip("/")
    dst.mkdir(parents=True, exist_ok=True)
    exact = [a for a in artifacts if a.path == path]
    below = [a for a in artifacts if not path or a.path.startswith(path + "/")]
    if not exact and not below:
        raise NotFoundError(f"no artifact {path!r}", hint="list_artifacts() shows what the run has")
    for a in exact + below:
        target = dst / a.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(blob_of(a), target)
        target.chmod(0o644)
    return (dst / path) if path else dst
