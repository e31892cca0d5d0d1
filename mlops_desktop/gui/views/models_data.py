"""The Models area's worker functions (no Qt): read the registry, move aliases, run local servers, scrape their
metrics and send "Try it" requests. Each takes the workspace and a ``progress`` like every core job."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import MlopsError, UsageError

if TYPE_CHECKING:
    from mlops_desktop.registry.entities import AliasChange, ModelVersion, RegisteredModel
    from mlops_desktop.serving.manager import ManagedServer
    from mlops_desktop.workspace import Workspace

TRY_TIMEOUT_S = 30.0
SCRAPE_TIMEOUT_S = 3.0
MAX_TRY_ROWS = 1000


# ------------------------------------------------------------------------------------------------ registry reads
def load_models(ws: Workspace, *, progress: Any) -> list[RegisteredModel]:
    from mlops_desktop import registry

    return registry.store(ws).list_models()


@dataclass
class ModelPage:
    """What the area shows for one registered model: its versions, its aliases' history, the protected names."""

    model: RegisteredModel
    versions: list[ModelVersion]
    history: list[AliasChange]
    protected: tuple[str, ...]

    @property
    def metric_keys(self) -> list[str]:
        keys: set[str] = set()
        for v in self.versions:
            keys.update(v.metrics)
        return sorted(keys)

    def version(self, number: int) -> ModelVersion | None:
        return next((v for v in self.versions if v.version == number), None)

    def default_version(self) -> int | None:
        """The version to open first: production's, else the champion's, else the newest."""
        for alias in ("production", "prod", "champion"):
            if alias in self.model.aliases:
                return self.model.aliases[alias]
        return self.versions[-1].version if self.versions else None


def load_model(ws: Workspace, name: str, *, progress: Any) -> ModelPage:
    from mlops_desktop import registry

    store = registry.store(ws)
    return ModelPage(store.get_model(name), store.list_versions(name), store.alias_history(name),
                     registry.protected_aliases(ws))


@dataclass
class VersionDetail:
    """A version's bundle as the detail panel shows it (read and verified off the GUI thread)."""

    version: ModelVersion
    files: list[tuple[str, int, str]]          # (path in the bundle, bytes, sha256)
    environment: dict[str, Any]
    flavor_config: dict[str, Any]
    serving_path: str
    serving_reason: str
    lineage: dict[str, Any]
    bundle_error: str = ""                      # the bundle no longer matches its hash (or is gone)
    example_rows: int = 0


def serving_explanation(manifest: dict[str, Any]) -> tuple[str, str]:
    """(path, why): the ONNX fast path when its check passed, else the flavor's own runtime and the reason."""
    flavor = str(manifest.get("flavor", ""))
    native = {"sklearn": "native scikit-learn", "pytorch": "native PyTorch", "onnx": "ONNX model (onnxruntime)",
              "python": "the project's predict function"}.get(flavor, flavor)
    fast = manifest.get("fast_path") or {}
    status = fast.get("status")
    if status == "verified":
        checks = fast.get("checks") or []
        rows = ", ".join(f"{c.get('rows')} {c.get('sample')} rows" for c in checks) or "its samples"
        diff = max((float(c.get("max_abs_diff") or 0.0) for c in checks), default=0.0)
        tol = (fast.get("tolerance") or {}).get("atol")
        return ("ONNX fast path", f"converted by skl2onnx {fast.get('skl2onnx', '?')}; onnxruntime "
                f"{fast.get('onnxruntime', '?')} reproduced the model on {rows} (largest difference {diff:.1e}"
                + (f", tolerance {tol:g})" if tol is not None else ")"))
    if not fast:
        return native, f"{flavor} models have no ONNX fast path"
    reason = str(fast.get("reason") or status or "not checked")
    if status == "mismatch":
        reason = "onnxruntime's predictions differed from the model's: " + reason
    return native, f"no ONNX fast path: {reason}"


def load_version(ws: Workspace, name: str, number: int, *, progress: Any) -> VersionDetail:
    from mlops_desktop import registry
    from mlops_desktop.registry.bundle import BundleError
    from mlops_desktop.registry.lineage import version_lineage

    mv = registry.store(ws).get_version(name, number)
    progress.update(0.2, f"checking the bundle of {mv.ref}")
    lineage = version_lineage(ws, mv)
    try:
        bundle = registry.open_version_bundle(ws, mv)
    except (BundleError, OSError) as exc:
        return VersionDetail(mv, [], {}, {}, mv.serving_path, "", lineage,
                             bundle_error=str(exc) if isinstance(exc, BundleError) else f"the bundle cannot be read: "
                             f"{exc.strerror or exc}")
    path, reason = serving_explanation(bundle.manifest)
    files = sorted((rel, int(meta.get("size", 0)), str(meta.get("sha256", ""))) for rel, meta in bundle.files.items())
    example = bundle.input_example() if bundle.manifest.get("input_example") else None
    rows = len(next(iter(example.values()))) if example else 0
    return VersionDetail(mv, files, bundle.environment, bundle.flavor_config, path, reason, lineage,
                         example_rows=rows)


# ------------------------------------------------------------------------------------------------ alias changes
def set_alias(ws: Workspace, name: str, alias: str, version: int, reason: str, *, progress: Any) -> AliasChange:
    from mlops_desktop import registry

    return registry.store(ws).set_alias(name, alias, version, reason=reason)


def rollback(ws: Workspace, name: str, alias: str, reason: str, *, progress: Any) -> AliasChange:
    from mlops_desktop import registry

    return registry.store(ws).rollback(name, alias, reason=reason)


def alias_at(ws: Workspace, name: str, alias: str, when: float, *, progress: Any) -> int | None:
    """Which version `alias` pointed at, at time `when` (one query over the audit log)."""
    from mlops_desktop import registry

    return registry.store(ws).alias_at(name, alias, when)


def rollback_target(history: list[AliasChange], alias: str) -> int | None:
    """The version a rollback of `alias` would go back to (the registry's own rule), or None."""
    from mlops_desktop.registry.sqlite_store import _previous_target

    changes = [c for c in history if c.alias == alias]
    if not changes or changes[-1].kind == "removed":
        return None
    return _previous_target(changes)


def describe_change(change: AliasChange) -> tuple[str, str]:
    """('production: v4 → v2 (rollback)', 'on 2026-12-02 06:53, by root, because …')."""
    if change.kind == "removed":
        head = f"{change.alias}: v{change.from_version} removed"
    elif change.from_version is None:
        head = f"{change.alias}: set to v{change.to_version}"
    else:
        head = f"{change.alias}: v{change.from_version} → v{change.to_version}"
    if change.kind == "rollback":
        head += "  (rollback)"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(change.ts))
    tail = f"on {when}, by {change.actor or 'unknown'}"
    tail += f", because {change.reason}" if change.reason else ", no reason given"
    return head, tail


# ------------------------------------------------------------------------------------------------ local servers
def list_servers(ws: Workspace, model: str, *, progress: Any) -> list[ManagedServer]:
    from mlops_desktop.serving import manager

    return [s for s in manager.list_servers(ws) if s.model == model]


def start_server(ws: Workspace, ref: str, name: str, port: int, *, progress: Any) -> ManagedServer:
    from mlops_desktop.serving import manager

    progress.update(0.1, f"starting {ref}")
    return manager.start(ws, ref, name=name, port=port)


def stop_server(ws: Workspace, name: str, *, progress: Any) -> ManagedServer:
    from mlops_desktop.serving import manager

    progress.update(0.1, f"stopping {name}")
    return manager.stop(ws, name)


def restart_server(ws: Workspace, name: str, ref: str, *, progress: Any) -> ManagedServer:
    from mlops_desktop.serving import manager

    progress.update(0.1, f"restarting {name} with {ref}")
    return manager.restart(ws, name, ref)


def server_log(ws: Workspace, name: str, *, progress: Any) -> str:
    from mlops_desktop.serving import manager

    return manager.logs(ws, name, 60)


@dataclass
class MetricsSample:
    """One scrape of a server's /metrics: counters summed over its series."""

    at: float
    requests: float = 0.0          # prediction requests answered (every code)
    errors: float = 0.0            # of those, 4xx and 5xx
    buckets: dict[float, float] = field(default_factory=dict)   # latency histogram: upper bound -> count
    latency_sum: float = 0.0
    latency_count: float = 0.0
    in_flight: float = 0.0
    dropped_log_rows: float = 0.0


PREDICT_ROUTES = ("/invocations",)


def parse_metrics(text: str, at: float) -> MetricsSample:
    """The figures the Serve panel plots, from the Prometheus text the server writes (prediction routes only)."""
    from prometheus_client.parser import text_string_to_metric_families

    sample = MetricsSample(at)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            route = s.labels.get("route", "")
            predict = route in PREDICT_ROUTES or route.endswith("/infer")
            if s.name == "mlops_requests_total" and predict:
                sample.requests += s.value
                if s.labels.get("code", "").startswith(("4", "5")):
                    sample.errors += s.value
            elif s.name == "mlops_request_duration_seconds_bucket" and predict:
                bound = float(s.labels["le"])
                sample.buckets[bound] = sample.buckets.get(bound, 0.0) + s.value
            elif s.name == "mlops_request_duration_seconds_sum" and predict:
                sample.latency_sum += s.value
            elif s.name == "mlops_request_duration_seconds_count" and predict:
                sample.latency_count += s.value
            elif s.name == "mlops_requests_in_flight":
                sample.in_flight += s.value
            elif s.name == "mlops_prediction_log_rows_total" and s.labels.get("outcome", "").startswith("dropped"):
                sample.dropped_log_rows += s.value
    return sample


def scrape(url: str, *, progress: Any) -> MetricsSample:
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=SCRAPE_TIMEOUT_S) as resp:  # noqa: S310 - our server
            text = resp.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError) as exc:
        raise MlopsError(f"cannot read {url}/metrics: {_reason(exc)}") from None
    return parse_metrics(text, time.time())


def quantile(buckets: dict[float, float], q: float) -> float | None:
    """The q-quantile of a cumulative histogram (linear inside a bucket, as PromQL's histogram_quantile)."""
    bounds = sorted(buckets)
    if not bounds:
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside > 0 else 1.0)
        lower, below = bound, count
    return lower


@dataclass
class Rates:
    """What happened between two scrapes."""

    at: float
    requests_per_s: float
    errors_per_s: float
    p50_s: float | None
    p95_s: float | None
    mean_s: float | None
    in_flight: float


def rates(prev: MetricsSample, cur: MetricsSample) -> Rates:
    dt = max(cur.at - prev.at, 1e-6)
    if cur.requests < prev.requests:   # the server restarted: its counters began again
        prev = MetricsSample(prev.at)
    delta = {b: cur.buckets.get(b, 0.0) - prev.buckets.get(b, 0.0) for b in cur.buckets}
    count = cur.latency_count - prev.latency_count
    mean = (cur.latency_sum - prev.latency_sum) / count if count > 0 else None
    return Rates(cur.at, (cur.requests - prev.requests) / dt, (cur.errors - prev.errors) / dt,
                 quantile(delta, 0.5), quantile(delta, 0.95), mean, cur.in_flight)


# ------------------------------------------------------------------------------------------------ try it
def example_payload(ws: Workspace, name: str, number: int, *, progress: Any) -> str:
    """The version's input example as an MLflow `dataframe_split` request body."""
    from mlops_desktop import registry

    example = registry.input_example(ws, f"{name}/{number}")
    if not example:
        raise UsageError(f"{name}/{number} has no input example", hint="send rows from a dataset instead")
    return _split_payload({k: _plain(v) for k, v in example.items()})


def dataset_payload(ws: Workspace, name: str, number: int, dataset: str, rows: int, *, progress: Any) -> str:
    """`rows` rows of a lake dataset, with the model's input columns, as a `dataframe_split` body."""
    from mlops_desktop import registry
    from mlops_desktop.data import catalog, lake

    if not 1 <= rows <= MAX_TRY_ROWS:
        raise UsageError(f"rows must be 1 to {MAX_TRY_ROWS} (got {rows})")
    mv = registry.store(ws).get_version(name, number)
    version = catalog.resolve(ws.db, dataset)
    names = mv.signature.input_names
    missing = [c for c in names if c not in version.schema]
    if missing:
        raise UsageError(f"{version.ref} lacks the model's input column(s) {', '.join(missing)}",
                         hint="the model expects: " + ", ".join(names))
    frame = lake.read_page(ws, version, 0, rows).select(names)
    return _split_payload({c: frame[c].to_list() for c in names})


def _plain(values: Any) -> list[Any]:
    import numpy as np

    return [None if isinstance(v, float) and v != v else v for v in np.asarray(values).tolist()]


def _split_payload(columns: dict[str, list[Any]]) -> str:
    names = list(columns)
    rows = [list(r) for r in zip(*(columns[n] for n in names), strict=True)]
    # One row per line: readable and editable, where json's indent puts every number on its own line.
    lines = ",\n   ".join(json.dumps(r) for r in rows)
    return f'{{"dataframe_split": {{\n  "columns": {json.dumps(names)},\n  "data": [\n   {lines}\n  ]\n}}}}\n'



@dataclass
class TryResult:
    """The answer to a Try-it request, as the panel shows it."""

    status: int
    seconds: float
    target: str                    # the server's URL, or "in-process"
    predictions: list[Any] | None  # on success
    message: str                   # on an error: the server's words (with the field and row it names)
    body: str                      # the raw answer


def send_request(url: str, body: str, *, progress: Any) -> TryResult:
    """POST `body` to a running server's /invocations (JSON, as an MLflow client does)."""
    data = body.encode("utf-8")
    request = urllib.request.Request(f"{url}/invocations", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=TRY_TIMEOUT_S) as resp:  # noqa: S310 - our own server
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (OSError, urllib.error.URLError) as exc:
        raise MlopsError(f"no answer from {url}: {_reason(exc)}",
                         hint="is the server still running? See the Serve tab") from None
    return _result(status, raw, time.perf_counter() - started, url)


def send_in_process(ws: Workspace, name: str, number: int, body: str, *, progress: Any) -> TryResult:
    """Answer `body` through the same app the server runs (create_app), in this worker, without a port."""
    import asyncio

    from mlops_desktop import registry
    from mlops_desktop.serving.app import create_app
    from mlops_desktop.serving.source import from_bundle

    mv = registry.store(ws).get_version(name, number)
    progress.update(0.2, f"loading {mv.ref}")
    served = from_bundle(registry.bundle_dir(ws, mv), name=mv.name, version=str(mv.version),
                         expected_hash=mv.bundle_hash)
    app = create_app(served)
    progress.check()
    progress.update(0.6, f"asking {mv.ref}")

    async def call() -> tuple[int, bytes, float]:
        await app.start()
        try:
            return await _asgi_post(app, "/invocations", body.encode("utf-8"))
        finally:
            await app.stop()

    status, raw, seconds = asyncio.run(call())
    return _result(status, raw, seconds, "in-process")


async def _asgi_post(app: Any, path: str, data: bytes) -> tuple[int, bytes, float]:
    sent = [False]
    out: dict[str, Any] = {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        if sent[0]:
            return {"type": "http.disconnect"}
        sent[0] = True
        return {"type": "http.request", "body": data, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = int(message["status"])
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"", "raw_path": path.encode(),
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
             "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0), "scheme": "http", "http_version": "1.1"}
    started = time.perf_counter()
    await app(scope, receive, send)
    return int(out["status"]), bytes(out["body"]), time.perf_counter() - started


def _result(status: int, raw: bytes, seconds: float, target: str) -> TryResult:
    text = raw.decode("utf-8", "replace")
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        doc = {}
    if 200 <= status < 300 and isinstance(doc, dict) and "predictions" in doc:
        return TryResult(status, seconds, target, list(doc["predictions"]), "", text)
    message = ""
    if isinstance(doc, dict):
        message = str(doc.get("message") or doc.get("error") or "")
        where = [f"field {doc['field']}" if doc.get("field") else "",
                 f"row {doc['row']}" if doc.get("row") is not None else ""]
        where = [w for w in where if w]
        if where and message:
            message += f" ({', '.join(where)})"
    return TryResult(status, seconds, target, None, message or f"the server answered {status} {status_phrase(status)}",
                     text)


def status_phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        exc = reason
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(reason or exc) or type(exc).__name__
