"""The smoke test of a model image before it is pushed: run it, wait for /health, send the bundle's input example
and a sample of the training dataset version from the lake, require the in-process model's predictions, measure
request latency (p50/p99) and how fast the container stops on SIGTERM; the container is removed afterwards."""

from __future__ import annotations

import contextlib
import http.client
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_desktop.containers import records
from mlops_desktop.containers.dockerfile import PORT
from mlops_desktop.containers.engine import api_error, connect, engine_address, short_reason
from mlops_desktop.containers.records import ImageRecord
from mlops_desktop.errors import UsageError

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace

STARTUP_TIMEOUT_S = 120.0


@dataclass
class SmokeResult:
    """What the smoke test saw. `passed` only when every prediction matched and the server answered."""

    passed: bool
    image: str
    ref: str
    rows: int = 0                      # rows compared
    example_rows: int = 0
    sample_rows: int = 0
    sample_source: str = ""            # "lake:DATASET@VERSION" or "input example"
    mismatches: int = 0
    first_mismatch: str = ""
    p50_ms: float | None = None        # single-row /invocations round trips
    p99_ms: float | None = None
    requests: int = 0
    startup_seconds: float | None = None   # container start -> /health 200
    stop_seconds: float | None = None      # SIGTERM -> exited
    exit_code: int | None = None
    error: str = ""
    log_tail: list[str] = field(default_factory=list)
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def smoke_test(ws: Workspace, image: str | ImageRecord, ref: str | None = None, *, docker_host: str | None = None,
               sample_rows: int = 200, labels: dict[str, str] | None = None,
               timeout_s: float = STARTUP_TIMEOUT_S) -> SmokeResult:
    """Run the image's server and compare its answers with the in-process model's; the result is recorded."""
    from mlops_desktop import registry
    from mlops_desktop.containers.images import get_image

    record = get_image(ws, image)
    if record.kind != "model":
        raise UsageError(f"{record.tag} is a {record.kind} image: only model images have predictions to check")
    mv = registry.resolve(ws, ref or record.ref)
    if mv.bundle_hash != record.bundle_hash:
        raise UsageError(f"{record.tag} holds bundle {record.bundle_hash[:12]}, but {mv.ref} is bundle "
                         f"{mv.bundle_hash[:12]}: the smoke test compares an image with the version it was built from")
    result = SmokeResult(False, record.tag, mv.ref, at=time.time())
    payloads = _payloads(ws, mv, sample_rows, result)
    predictor = registry.load_predictor(ws, mv, prefer_onnx=bool(record.options.get("fast_path")))
    client = connect(docker_host)
    where = engine_address(docker_host)
    container = None
    try:
        try:
            container = client.containers.run(
                record.image_id, detach=True, name=f"mlops-smoke-{mv.name}-{secrets.token_hex(3)}",
                ports={f"{PORT}/tcp": ("127.0.0.1", None)},
                labels={"org.mlops-desktop.kind": "smoke-test", **(labels or {})})
        except Exception as exc:
            raise api_error(f"starting {record.tag}", exc, where) from None
        started = time.monotonic()
        port = _wait_port(container, timeout_s)
        _wait_health(container, port, timeout_s, result)
        result.startup_seconds = round(time.monotonic() - started, 3)
        _compare(port, payloads, predictor, mv.signature, result)
        _latency(port, payloads[-1][1], result)
        result.passed = result.mismatches == 0 and result.rows > 0 and not result.error
    except _SmokeStop as stop:
        result.error = str(stop)
    finally:
        if container is not None:
            _stop(container, result)
        client.close()
    records.save_smoke(ws.db, record, result.to_dict())
    return result


class _SmokeStop(Exception):  # noqa: N818 - ends the test with a reason recorded in the result
    pass


def _payloads(ws: Workspace, mv: Any, sample_rows: int, result: SmokeResult) -> list[tuple[str, dict[str, Any]]]:
    """[(label, {"columns": [...], "data": [[...], ...]})]: the input example, then the lake sample."""
    from mlops_desktop import registry
    from mlops_desktop.registry.example import _jsonable

    names = list(mv.signature.input_names)
    out: list[tuple[str, dict[str, Any]]] = []
    example = registry.input_example(ws, mv)
    if example:
        n = len(next(iter(example.values())))
        out.append(("input example", {"columns": names,
                                      "data": [[_jsonable(example[c][i]) for c in names] for i in range(n)]}))
        result.example_rows = n
    sample = _lake_sample(ws, mv, names, sample_rows)
    if sample is not None:
        label, rows = sample
        out.append((label, {"columns": names, "data": rows}))
        result.sample_rows, result.sample_source = len(rows), label
    elif example:
        result.sample_source = "input example"
    if not out:
        raise UsageError(f"{mv.ref} has no input example and no training dataset in the lake: nothing to send",
                         hint="register the model with an input example")
    return out


def _lake_sample(ws: Workspace, mv: Any, names: list[str], n: int) -> tuple[str, list[list[Any]]] | None:
    """A seeded sample of the training dataset version's rows (the model's input columns)."""
    if n <= 0:
        return None
    from mlops_desktop.data import catalog, lake
    from mlops_desktop.errors import MlopsError
    from mlops_desktop.registry.example import _jsonable

    for item in mv.inputs:
        if item.get("context") not in ("training", "", None):
            continue
        ref = f"{item['dataset']}@{item['version']}"
        try:
            version = catalog.resolve(ws.db, ref)
            frame = lake.scan(ws, version).head(100_000).collect()
        except (MlopsError, OSError):
            continue  # a dataset that left the lake: the example still runs
        if not set(names) <= set(frame.columns) or frame.height == 0:
            continue
        frame = frame.select(names).sample(min(n, frame.height), seed=0)
        return f"lake:{ref}", [[_jsonable(v) for v in row] for row in frame.iter_rows()]
    return None


def _wait_port(container: Any, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        container.reload()
        bindings = ((container.attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{PORT}/tcp") or []
        for b in bindings:
            if b.get("HostPort"):
                return int(b["HostPort"])
        if container.status in ("exited", "dead"):
            raise _SmokeStop(f"the container exited before it listened: {_tail(container)}")
        time.sleep(0.1)
    raise _SmokeStop(f"the container published no port within {timeout_s:.0f} s")


def _wait_health(container: Any, port: int, timeout_s: float, result: SmokeResult) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, _ = _request(port, "GET", "/health", None, timeout=2)
            if status == 200:
                return
        container.reload()
        if container.status in ("exited", "dead"):
            result.exit_code = container.attrs.get("State", {}).get("ExitCode")
            raise _SmokeStop(f"the server exited with code {result.exit_code} before /health answered: "
                             f"{_tail(container)}")
        time.sleep(0.2)
    raise _SmokeStop(f"/health did not answer 200 within {timeout_s:.0f} s: {_tail(container)}")


def _request(port: int, method: str, path: str, body: bytes | None, timeout: float = 30,
             conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        if own:
            c.close()


def _compare(port: int, payloads: list[tuple[str, dict[str, Any]]], predictor: Any, signature: Any,
             result: SmokeResult) -> None:
    import numpy as np

    from mlops_desktop.serving.payloads import RequestSchema, parse_mlflow

    schema = RequestSchema(signature)
    for label, split in payloads:
        body = json.dumps({"dataframe_split": split}).encode()
        status, answer = _request(port, "POST", "/invocations", body, timeout=60)
        if status != 200:
            raise _SmokeStop(f"/invocations answered {status} to the {label}: {answer[:300].decode(errors='replace')}")
        got = np.asarray(json.loads(answer)["predictions"])
        # the same parsing as the server's, so both sides see identical typed columns
        expected = np.asarray(predictor.predict(parse_mlflow(body, "application/json", schema).column_arrays())
                              ["prediction"])
        if got.shape != expected.shape:
            raise _SmokeStop(f"{label}: the image answered {got.shape[0]} predictions for {expected.shape[0]} rows")
        if expected.dtype.kind in "fc":
            same = np.isclose(got.astype(float), expected.astype(float), rtol=1e-6, atol=1e-9)
        else:
            same = got.astype(str) == expected.astype(str)
        bad = np.flatnonzero(~same)
        result.rows += int(expected.shape[0])
        result.mismatches += int(bad.size)
        if bad.size and not result.first_mismatch:
            i = int(bad[0])
            result.first_mismatch = f"{label} row {i}: image {got[i]!r}, in-process {expected[i]!r}"


def _latency(port: int, split: dict[str, Any], result: SmokeResult, limit: int = 200) -> None:
    """Single-row round trips over one keep-alive connection (what a caller with one row at a time sees)."""
    import numpy as np

    rows = split["data"][:limit]
    if not rows:
        return
    bodies = [json.dumps({"dataframe_split": {"columns": split["columns"], "data": [r]}}).encode() for r in rows]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    try:
        for i in range(limit):
            t = time.perf_counter()
            status, _ = _request(port, "POST", "/invocations", bodies[i % len(bodies)], conn=conn)
            times.append(time.perf_counter() - t)
            if status != 200:
                raise _SmokeStop(f"/invocations answered {status} to a single row")
    finally:
        conn.close()
    ms = np.asarray(times) * 1000
    result.requests = len(times)
    result.p50_ms = round(float(np.percentile(ms, 50)), 3)
    result.p99_ms = round(float(np.percentile(ms, 99)), 3)


def _stop(container: Any, result: SmokeResult) -> None:
    """SIGTERM with a 20 s grace (tini forwards it, the server drains), then remove the container."""
    t = time.monotonic()
    with contextlib.suppress(Exception):
        container.stop(timeout=20)
        result.stop_seconds = round(time.monotonic() - t, 3)
        container.reload()
        if result.exit_code is None:
            result.exit_code = container.attrs.get("State", {}).get("ExitCode")
        if not result.passed:
            result.log_tail = _tail(container).splitlines()[-20:]
    with contextlib.suppress(Exception):
        container.remove(force=True, v=True)


def _tail(container: Any, lines: int = 15) -> str:
    try:
        text = container.logs(tail=lines).decode("utf-8", errors="replace").strip()
    except Exception as exc:
        return f"(no log: {short_reason(exc)})"
    return text or "(the container wrote no log)"


