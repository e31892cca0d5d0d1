"""The model server as an ASGI app, built by `create_app(models, config)`: no module-level state, one per server.

A raw ASGI app (no framework): routing is a dict lookup and a few prefix checks, so the per-request cost is the
HTTP parser (uvicorn + httptools), JSON (orjson) and the model; docs/benchmarks.md has the measurement behind it.
Several apps live in one process (tests, the A/B router, the GUI's "Try it"); each owns its metrics registry,
batchers and prediction logs, started and stopped by the ASGI lifespan (uvicorn runs it; `start()`/`stop()` for
an in-process caller).
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from mlops_desktop import __version__
from mlops_desktop.registry.predictor import Predictor
from mlops_desktop.serving import handlers
from mlops_desktop.serving.batching import Batcher
from mlops_desktop.serving.columns import BadInput
from mlops_desktop.serving.config import BatchConfig, ServeConfig
from mlops_desktop.serving.decision import DecidingPredictor, Decision
from mlops_desktop.serving.metrics import ServerMetrics
from mlops_desktop.serving.payloads import RequestSchema, parse_mlflow, parse_v2

if TYPE_CHECKING:
    from mlops_desktop.serving.lakesink import LakeCommitter
    from mlops_desktop.serving.predlog import PredictionLog
    from mlops_desktop.workspace import Workspace

log = logging.getLogger("mlops_desktop.serving")

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
ARM_RE = re.compile(rb"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")  # x-mlops-arm, set by the A/B router
OPEN_ROUTES = frozenset(("/health", "/ping", "/v2/health/live", "/v2/health/ready"))  # probes need no token
_V2_MODEL = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?$")
_SEGMENT = re.compile(r"^/predictions/segments/(\d{1,10})$")


@dataclass
class ServedModel:
    """One model version the server holds, and what `/version` and the v2 metadata say about it."""

    name: str
    version: str
    predictor: Predictor
    bundle_hash: str = ""
    batch: BatchConfig | None = None  # None: the server's default
    log_dataset: str | None = None    # lake dataset of its prediction log (None: predictions_<name>)

    def info(self) -> dict[str, Any]:
        return {"model": self.name, "version": self.version, "bundle_hash": self.bundle_hash,
                "flavor": self.predictor.flavor, "serving_path": self.predictor.serving_path,
                "app_version": __version__}


class _Runtime:
    """What a served model needs at run time: its batcher and prediction log (made at start-up)."""

    def __init__(self, model: ServedModel, batcher: Batcher, plog: PredictionLog | None,
                 committer: LakeCommitter | None, decision: Decision) -> None:
        self.model = model
        self.batcher = batcher
        self.log = plog
        self.committer = committer
        self.decision = decision
        self.schema = RequestSchema(model.predictor.signature)


class ModelServer:
    """The ASGI application. `models[0]` answers /invocations; v2 routes pick a model by name."""

    def __init__(self, models: Sequence[ServedModel], config: ServeConfig, workspace: Workspace | None) -> None:
        if not models:
            raise ValueError("a server needs at least one model")
        self.models = list(models)
        self.config = config
        self.workspace = workspace
        self.metrics = ServerMetrics()
        self.ready = False
        self.started = False
        self._runtimes: dict[str, _Runtime] = {}
        self._token = config.token.encode() if config.token else None
        self._admin_token = config.admin_token.encode() if config.admin_token else None
        self._rid_prefix = uuid.uuid4().hex[:12]  # + a counter: unique across processes, cheaper than uuid4()
        self._seq = 0
        for m in self.models:
            self.metrics.model_info.labels(m.name, m.version, m.predictor.flavor, m.predictor.serving_path,
                                           m.bundle_hash).set(1)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self.started:
            return
        for m in self.models:
            rt = self._make_runtime(m)
            await rt.batcher.start()
            self._runtimes[m.name] = rt
        self.started = True
        self.ready = True

    def _make_runtime(self, m: ServedModel) -> _Runtime:
        metrics = self.metrics

        classifier = m.predictor.signature.task == "classification"

        def on_batch(stats: Any, outputs: dict[str, Any]) -> None:
            metrics.child(metrics.batch_rows, m.name, m.version).observe(stats.rows)
            metrics.child(metrics.batch_requests, m.name, m.version).observe(stats.requests)
            metrics.observe_outputs(m.name, m.version, outputs["prediction"], classifier)

        sig = m.predictor.signature
        decision = Decision(m.name, tuple(sig.classes), classifier)
        if self.config.threshold is not None and m is self.models[0]:
            decision.set(self.config.threshold, self.config.positive_class, actor="server", reason="--threshold")
        self._threshold_gauge(m, decision)
        batcher = Batcher(DecidingPredictor(m.predictor, decision), m.batch or self.config.batch,
                          on_batch=on_batch)
        plog = committer = None
        if self.config.log.active:
            from mlops_desktop.serving.predlog import PredictionLog

            assert self.config.log.directory is not None
            folder = self.config.log.directory / log_folder(m.name, m.version)

            def count(outcome: str, rows: int) -> None:
                metrics.child(metrics.log_records, m.name, m.version, outcome).inc(rows)

            plog = PredictionLog(_with_dir(self.config.log, folder), m.predictor.signature, m.name, m.version,
                                 counters=count)
            if self.workspace is not None:
                from mlops_desktop.serving.lakesink import LakeCommitter, dataset_name

                committer = LakeCommitter(self.workspace, folder, m.log_dataset or self.config.log.dataset
                                          or dataset_name(m.name), interval_s=self.config.log.commit_interval_s,
                                          model=m.name, version=m.version)
                committer.start()
        return _Runtime(m, batcher, plog, committer, decision)

    def _threshold_gauge(self, m: ServedModel, decision: Decision) -> None:
        current = decision.current()
        self.metrics.child(self.metrics.threshold, m.name, m.version).set(
            current["threshold"] if current else float("nan"))

    async def stop(self) -> None:
        """Drain: score what is queued, write every accepted prediction-log record, make the last lake commit."""
        import asyncio

        self.ready = False
        for rt in self._runtimes.values():
            await rt.batcher.close()
        loop = asyncio.get_running_loop()
        for rt in self._runtimes.values():
            if rt.log is not None:
                await loop.run_in_executor(None, rt.log.close)
            if rt.committer is not None:
                await loop.run_in_executor(None, rt.committer.close)
        self.started = False

    def runtime(self, name: str | None = None) -> _Runtime:
        return self._runtimes[name or self.models[0].name]

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    log.exception("the server could not start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.stop()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        start = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")
        if not rid or not REQUEST_ID_RE.match(rid):
            self._seq += 1
            rid = f"{self._rid_prefix}-{self._seq:x}"
        if path == "/admin/settings":  # its own token (the admin's), not the clients'
            status = await self._admin(receive, send, headers, rid, method, scope)
            self._count(None, path, status, start)
            return
        if self._token is not None and path not in OPEN_ROUTES and not self._authorized(headers):
            await _send(send, 401, {"error_code": "UNAUTHENTICATED",
                                    "message": "this server needs 'Authorization: Bearer <token>'"}, rid,
                        extra=[(b"www-authenticate", b'Bearer realm="mlops-desktop"')])
            self._count(None, "auth", 401, start)
            return
        if path == "/invocations":
            if method != "POST":
                await _method(send, rid, "POST")
                return
            await self._predict(scope, receive, send, headers, rid, start, self._runtimes_first(), "/invocations")
            return
        if path.startswith("/v2/models/"):
            await self._v2_model(scope, receive, send, headers, rid, start, path, method)
            return

        route = handlers.GET_ROUTES.get(path)
        if route is not None:
            if method not in ("GET", "HEAD"):
                await _method(send, rid, "GET")
                return
            status, body, ctype = route(self)
            await _send_raw(send, status, body, ctype, rid)
            self._count(None, path, status, start)
            return
        if path == "/predictions/segments" or _SEGMENT.match(path):
            status, body, ctype = handlers.segments(self, path, parse_qs(scope.get("query_string", b"").decode()))
            await _send_raw(send, status, body, ctype, rid)
            self._count(None, "/predictions/segments", status, start)
            return
        await _send(send, 404, {"error_code": "NOT_FOUND", "message": f"no route {path}; see /v2/models or "
                                "POST /invocations"}, rid)
        self._count(None, "other", 404, start)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        value = headers.get(b"authorization", b"")
        scheme, _, token = value.partition(b" ")
        assert self._token is not None
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._token)

    def _runtimes_first(self) -> _Runtime:
        return self._runtimes[self.models[0].name]

    async def _v2_model(self, scope: dict[str, Any], receive: Any, send: Any, headers: dict[bytes, bytes],
                        rid: str, start: float, path: str, method: str) -> None:
        m = _V2_MODEL.match(path)
        rt = self._runtimes.get(m.group(1)) if m else None
        if m is None or rt is None or (m.group(2) is not None and m.group(2) != rt.model.version):
            known = ", ".join(f"{x.name} (version {x.version})" for x in self.models)
            await _send(send, 404, {"error": f"no model at {path}; this server has {known}"}, rid)
            self._count(None, "/v2/models/{name}", 404, start)
            return
        action = m.group(3)
        if action == "/infer":
            if method != "POST":
                await _method(send, rid, "POST")
                return
            await self._predict(scope, receive, send, headers, rid, start, rt, "/v2/models/{name}/infer")
            return
        if method not in ("GET", "HEAD"):
            await _method(send, rid, "GET")
            return
        if action == "/ready":
            status = 200 if self.ready else 503
            await _send(send, status, {"name": rt.model.name, "ready": self.ready}, rid)
        else:
            await _send(send, 200, handlers.v2_metadata(rt.model), rid)
        self._count(rt, "/v2/models/{name}" + (action or ""), 200, start)

    async def _predict(self, scope: dict[str, Any], receive: Any, send: Any, headers: dict[bytes, bytes],
                       rid: str, start: float, rt: _Runtime, route: str) -> None:
        m = rt.model
        batcher = rt.batcher
        inflight = self.metrics.child(self.metrics.in_flight, m.name, m.version)
        inflight.inc()
        batcher.reading(1)
        reading = True
        status = 200
        try:
            try:
                body = await self._body(receive, headers)
                v2 = route != "/invocations"
                if v2:
                    parsed = handlers.parse(parse_v2, body, rt.schema)
                else:
                    ctype = headers.get(b"content-type", b"application/json").decode("latin-1")
                    parsed = handlers.parse(parse_mlflow, body, ctype, rt.schema)
                batcher.reading(-1)
                reading = False
                outputs = await batcher.predict(parsed)
                payload = handlers.v2_response(m, rid, parsed, outputs) if v2 else \
                    handlers.mlflow_response(outputs)
            except BadInput as exc:
                status = exc.status
                await _send(send, status, exc.to_dict() if route == "/invocations" else handlers.v2_error(exc),
                            rid)
                return
            except Exception as exc:  # the model raised, or a bug: an error in words, never a traceback
                status, doc = handlers.server_error(exc, rid, route == "/invocations")
                await _send(send, status, doc, rid)
                return
            await _send_raw(send, 200, payload, b"application/json", rid)
            if rt.log is not None:
                elapsed = time.perf_counter() - start
                arm = headers.get(b"x-mlops-arm")
                rt.log.offer(parsed.request_id or rid, time.time() - elapsed, elapsed, parsed, outputs,
                             arm=arm.decode() if arm is not None and ARM_RE.match(arm) else None,
                             shadow=headers.get(b"x-mlops-shadow") == b"1")
        finally:
            if reading:
                batcher.reading(-1)
            inflight.dec()
            self._count(rt, route, status, start)

    async def _admin(self, receive: Any, send: Any, headers: dict[bytes, bytes], rid: str, method: str,
                     scope: dict[str, Any]) -> int:
        """GET/PUT /admin/settings: the live decision threshold of a classifier (decision.py)."""
        if self._admin_token is None:
            await _send(send, 403, {"error_code": "PERMISSION_DENIED", "message": "this server's admin API is "
                                    "closed: start it with --admin-token-file (or $MLOPS_ADMIN_TOKEN)"}, rid)
            return 403
        value = headers.get(b"authorization", b"")
        scheme, _, token = value.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self._admin_token):
            await _send(send, 401, {"error_code": "UNAUTHENTICATED",
                                    "message": "the admin API needs 'Authorization: Bearer <admin token>'"}, rid,
                        extra=[(b"www-authenticate", b'Bearer realm="mlops-desktop-admin"')])
            return 401
        query = parse_qs(scope.get("query_string", b"").decode())
        if method in ("GET", "HEAD"):
            name = (query.get("model") or [self.models[0].name])[0]
            rt = self._runtimes.get(name)
            if rt is None:
                await _send(send, 404, {"error": f"no model {name!r} on this server"}, rid)
                return 404
            await _send(send, 200, {"model": name, "version": rt.model.version,
                                    "decision": rt.decision.current(), "changes": rt.decision.changes}, rid)
            return 200
        if method not in ("PUT", "POST"):
            await _method(send, rid, "GET, PUT")
            return 405
        import orjson

        status, doc = 200, None
        try:
            body = await self._body(receive, headers)
            doc = orjson.loads(body)
            if not isinstance(doc, dict):
                raise ValueError
        except BadInput as exc:
            status, doc = exc.status, {"error_code": exc.code, "message": exc.message}
        except ValueError:
            status, doc = 400, {"error_code": "BAD_REQUEST", "message": "the body must be a JSON object: "
                                "{\"threshold\": 0-1 or null, \"positive_class\": LABEL, \"actor\": ..., "
                                "\"reason\": ...}"}
        if status == 200:
            assert doc is not None
            status, doc = self._set_decision(doc)
        await _send(send, status, doc, rid)
        return status

    def _set_decision(self, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        from mlops_desktop.errors import UsageError

        name = doc.get("model") or self.models[0].name
        rt = self._runtimes.get(str(name))
        if rt is None:
            return 404, {"error_code": "NOT_FOUND", "message": f"no model {name!r} on this server"}
        if "threshold" not in doc:
            return 400, {"error_code": "BAD_REQUEST", "message": "give 'threshold' (0-1, or null for the model's "
                         "own labels)"}
        actor, reason = str(doc.get("actor") or "unknown"), str(doc.get("reason") or "")
        before = rt.decision.current()
        try:
            after = rt.decision.set(doc["threshold"], doc.get("positive_class"), actor=actor[:200],
                                    reason=reason[:2000])
        except UsageError as exc:
            return 409 if "not a classifier" in exc.message else 400, {"error_code": "INVALID_PARAMETER_VALUE",
                                                                        "message": exc.message}
        self._threshold_gauge(rt.model, rt.decision)
        log.warning("decision of %s/%s changed by %s (%s): %s -> %s", rt.model.name, rt.model.version, actor,
                    reason, before, after)
        return 200, {"model": rt.model.name, "version": rt.model.version, "from": before, "decision": after}

    async def _body(self, receive: Any, headers: dict[bytes, bytes]) -> bytes:
        limit = self.config.max_body_bytes
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise BadInput(413, f"the request body ({int(length)} bytes) is over this server's limit of "
                                f"{limit} bytes (--max-body-mb)", code="REQUEST_TOO_LARGE")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadInput(400, "the client went away before sending the whole body", code="BAD_REQUEST")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BadInput(413, f"the request body is over this server's limit of {limit} bytes "
                                    "(--max-body-mb)", code="REQUEST_TOO_LARGE")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _count(self, rt: _Runtime | None, route: str, status: int, start: float) -> None:
        m = rt.model if rt is not None else self.models[0]
        self.metrics.observe_request(m.name, m.version, route, status, time.perf_counter() - start)


def log_folder(model: str, version: str) -> str:
    """The prediction-log folder of one model version: `<model>-v<version>` (safe characters only)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{model}-v{version}")
    return safe.lstrip(".") or "model"


def _with_dir(config: Any, folder: Any) -> Any:
    from dataclasses import replace

    return replace(config, directory=folder)


async def _send(send: Any, status: int, doc: Any, rid: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    import orjson

    await _send_raw(send, status, orjson.dumps(doc), b"application/json", rid, extra)


async def _send_raw(send: Any, status: int, body: bytes, ctype: bytes, rid: str,
                    extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
               (b"x-request-id", rid.encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _method(send: Any, rid: str, allowed: str) -> None:
    await _send(send, 405, {"error_code": "METHOD_NOT_ALLOWED", "message": f"use {allowed} here"}, rid,
                extra=[(b"allow", allowed.encode())])


def create_app(models: Predictor | ServedModel | Sequence[ServedModel], config: ServeConfig | None = None, *,
               workspace: Workspace | None = None, name: str = "model", version: str = "1") -> ModelServer:
    """The app for one or more models. A bare Predictor is served as `name`/`version`."""
    config = config or ServeConfig()
    if isinstance(models, ServedModel):
        served = [models]
    elif isinstance(models, Sequence):
        served = list(models)
    else:
        served = [ServedModel(name, version, models)]
    names = [m.name for m in served]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must differ within one server: {names}")
    return ModelServer(served, config, workspace)
