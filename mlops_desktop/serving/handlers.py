"""What the server's routes answer: MLflow and v2 responses, metadata, health, metrics and prediction-log segments."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops_desktop.serving import segfmt
from mlops_desktop.serving.batching import ModelFailed
from mlops_desktop.serving.columns import BadInput
from mlops_desktop.serving.payloads import Parsed

if TYPE_CHECKING:
    from mlops_desktop.serving.app import ModelServer, ServedModel

log = logging.getLogger("mlops_desktop.serving")
JSON = b"application/json"
_V2_TYPES = {"f": "FP64", "i": "INT64", "u": "UINT64", "b": "BOOL"}
_SIG_V2 = {"float32": "FP32", "float64": "FP64", "int8": "INT8", "int16": "INT16", "int32": "INT32",
           "int64": "INT64", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
           "bool": "BOOL"}


def _dumps(doc: Any) -> bytes:
    import orjson

    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def parse(fn: Callable[..., Parsed], *args: Any) -> Parsed:
    """Run a payload parser; anything it did not foresee is still the client's malformed request, never a 500."""
    try:
        return fn(*args)
    except BadInput:
        raise
    except (ValueError, TypeError, KeyError, IndexError, RecursionError, OverflowError) as exc:
        log.debug("unforeseen bad payload", exc_info=True)
        raise BadInput(400, f"the request cannot be read ({type(exc).__name__})", code="BAD_REQUEST") from None


def _values(array: Any) -> Any:
    """An output array as orjson writes it fast: numeric numpy as is, anything else as Python values."""
    import numpy as np

    array = np.asarray(array)
    if array.dtype.kind in "fiub" and array.dtype.byteorder in ("=", "|", "<"):
        return np.ascontiguousarray(array)
    return array.tolist()


def mlflow_response(outputs: dict[str, Any]) -> bytes:
    """MLflow's scoring-server answer: {"predictions": [...]}, what its clients read."""
    return _dumps({"predictions": _values(outputs["prediction"])})


def _v2_type(array: Any) -> str:
    return _V2_TYPES.get(array.dtype.kind, "BYTES")


def v2_response(model: ServedModel, rid: str, parsed: Parsed, outputs: dict[str, Any]) -> bytes:
    import numpy as np

    tensors = []
    for name, value in outputs.items():
        if parsed.outputs is not None and name not in parsed.outputs:
            continue
        array = np.asarray(value)
        tensors.append({"name": name, "datatype": _v2_type(array), "shape": list(array.shape),
                        "data": _values(array.reshape(-1))})
    return _dumps({"model_name": model.name, "model_version": model.version, "id": parsed.request_id or rid,
                   "outputs": tensors})


def v2_error(exc: BadInput) -> dict[str, Any]:
    out: dict[str, Any] = {"error": exc.message}
    if exc.field is not None:
        out["field"] = exc.field
    if exc.row is not None:
        out["row"] = exc.row
    return out


def server_error(exc: Exception, rid: str, mlflow: bool) -> tuple[int, dict[str, Any]]:
    """The model refused the rows (422, in words) or something broke on our side (500, the request id to find it)."""
    if isinstance(exc, ModelFailed) and isinstance(exc.error, ValueError | TypeError):
        first = (str(exc.error).strip().splitlines() or [""])[0][:300]
        message = f"the model could not score these rows ({type(exc.error).__name__}: {first})"
        status, code = 422, "INVALID_PARAMETER_VALUE"
    else:
        cause = exc.error if isinstance(exc, ModelFailed) else exc
        log.error("request %s failed", rid, exc_info=cause)
        message = f"the server failed on this request ({type(cause).__name__}); its log has the details " \
                  f"under request id {rid}"
        status, code = 500, "INTERNAL_ERROR"
    return status, ({"error_code": code, "message": message} if mlflow else {"error": message})


def v2_metadata(model: ServedModel) -> dict[str, Any]:
    sig = model.predictor.signature
    outputs: list[dict[str, Any]] = [{"name": "prediction", "datatype": _SIG_V2.get(sig.outputs[0].dtype, "BYTES"),
                                      "shape": [-1]}]
    if sig.task == "classification":
        outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, len(sig.classes) or -1]})
    return {"name": model.name, "versions": [model.version], "platform": f"mlops-desktop/{model.predictor.flavor}",
            "inputs": [{"name": c.name, "datatype": _SIG_V2.get(c.dtype, "BYTES"), "shape": [-1]}
                       for c in sig.inputs],
            "outputs": outputs,
            "parameters": {"bundle_hash": model.bundle_hash, "serving_path": model.predictor.serving_path,
                           "signature": sig.to_dict()}}


def _health(server: ModelServer) -> tuple[int, bytes, bytes]:
    return (200, b'{"status":"ok"}', JSON) if server.ready else (503, b'{"status":"unavailable"}', JSON)


def _ping(server: ModelServer) -> tuple[int, bytes, bytes]:
    return (200, b"\n", b"application/json") if server.ready else (503, b"\n", JSON)


def _live(server: ModelServer) -> tuple[int, bytes, bytes]:
    return 200, b'{"live":true}', JSON


def _ready(server: ModelServer) -> tuple[int, bytes, bytes]:
    return (200 if server.ready else 503), _dumps({"ready": server.ready}), JSON


def _version(server: ModelServer) -> tuple[int, bytes, bytes]:
    def info(m: ServedModel) -> dict[str, Any]:
        rt = server._runtimes.get(m.name)
        return m.info() | {"decision": rt.decision.current() if rt is not None else None}

    first = server.models[0]
    doc = info(first) | {"models": [info(m) for m in server.models]}
    return 200, _dumps(doc), JSON


def _metrics(server: ModelServer) -> tuple[int, bytes, bytes]:
    from prometheus_client import CONTENT_TYPE_LATEST

    for rt in server._runtimes.values():
        if rt.log is not None:
            server.metrics.log_queue.set(rt.log.queued_rows)
    return 200, server.metrics.render(), CONTENT_TYPE_LATEST.encode()


def _server_meta(server: ModelServer) -> tuple[int, bytes, bytes]:
    from mlops_desktop import __version__

    return 200, _dumps({"name": "mlops-desktop", "version": __version__, "extensions": []}), JSON


def _models(server: ModelServer) -> tuple[int, bytes, bytes]:
    return 200, _dumps({"models": [m.info() for m in server.models]}), JSON


GET_ROUTES: dict[str, Callable[[ModelServer], tuple[int, bytes, bytes]]] = {
    "/health": _health, "/ping": _ping, "/v2/health/live": _live, "/v2/health/ready": _ready,
    "/version": _version, "/metrics": _metrics, "/v2": _server_meta, "/v2/models": _models,
}


def segments(server: ModelServer, path: str, query: dict[str, list[str]]) -> tuple[int, bytes, bytes]:
    """GET /predictions/segments?model=M&after=N: closed segments after a cursor; GET .../segments/N: one file."""
    name = (query.get("model") or [server.models[0].name])[0]
    rt = server._runtimes.get(name)
    if rt is None:
        return 404, _dumps({"error": f"no model {name!r} on this server"}), JSON
    if rt.log is None:
        return 404, _dumps({"error": "this server keeps no prediction log (--no-log, or no log directory)"}), JSON
    tail = path.rsplit("/", 1)[-1]
    if tail.isdigit():
        found = [s for s in rt.log.segments(int(tail) - 1) if s.seq == int(tail)]
        if not found:
            return 404, _dumps({"error": f"no closed segment {tail} (removed by retention, or still open)"}), JSON
        try:
            return 200, found[0].path.read_bytes(), segfmt.content_type(found[0].path)
        except OSError:
            return 404, _dumps({"error": f"segment {tail} was removed meanwhile"}), JSON
    raw = (query.get("after") or ["0"])[0]
    if not raw.isdigit():
        return 400, _dumps({"error": "'after' must be a segment number (0 for all)"}), JSON
    from mlops_desktop.serving.lakesink import segments_payload

    doc = segments_payload(rt.log.segments(int(raw))) | {"model": rt.model.name, "version": rt.model.version,
                                                           "log_dir": rt.log.directory.name}
    return 200, _dumps(doc), JSON
