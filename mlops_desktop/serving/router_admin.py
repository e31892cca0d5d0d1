"""The router's own routes: health and readiness, metrics, the shadow comparison segments, and the admin API that
changes weights, the shadow, a classifier's decision threshold and the kill switch live.

    GET  /admin/state                 live settings, arms, backend health, shadow counters
    GET  /admin/changes?after=N       the change log (who, when, why, from, to), oldest first
    POST /admin/settings              {"actor": "...", "reason": "...", and any of
                                       "weights": {"v1": 80, "v2": 20}, "kill_switch": true,
                                       "shadow": {"enabled": true, "percent": 5},
                                       "threshold": {"arm": "v2", "threshold": 0.7, "positive_class": 1}}

The admin API needs `Authorization: Bearer <admin token>`; a router without an admin token answers 403 to it, on any
address. A change is checked whole before any of it applies; each applied part is one change event (fsynced to
`changes.jsonl` before the answer) and the live settings are saved, so a restarted router resumes them. A threshold
is pushed to every backend of the arm (the model server applies it); a backend that is down gets it when its health
checks pass again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from mlops_desktop.errors import UsageError
from mlops_desktop.serving import segfmt
from mlops_desktop.serving.router_config import check_percent, check_weights
from mlops_desktop.serving.router_state import Settings, save_settings

if TYPE_CHECKING:
    from mlops_desktop.serving.router import Router, _Client, _Request
    from mlops_desktop.serving.router_upstream import Backend

log = logging.getLogger("mlops_desktop.serving.router")
JSON = b"application/json"
_SETTINGS_KEYS = {"actor", "reason", "weights", "kill_switch", "shadow", "threshold"}


def _dumps(doc: Any) -> bytes:
    import orjson

    return orjson.dumps(doc)


def local(client: _Client, req: _Request, path: bytes, rid: bytes, auth: bytes | None) -> None:
    """Answer a route the router handles itself."""
    r = client.r
    method = req.method
    if path.startswith(b"/admin/"):
        if r._admin_token is None:
            client.reply_local(req, 403, _dumps({"error_code": "PERMISSION_DENIED", "message": (
                "this router's admin API is closed: it has no admin token (admin_token_file, or "
                "$MLOPS_ADMIN_TOKEN)")}), JSON, rid)
            return
        if not r.authorized(auth, r._admin_token):
            client.reply_local(req, 401, _dumps({"error_code": "UNAUTHENTICATED", "message": (
                "the admin API needs 'Authorization: Bearer <admin token>'")}), JSON, rid)
            return
        if path == b"/admin/settings" and method in (b"POST", b"PUT", b"PATCH"):
            async def run() -> None:
                status, doc = await change_settings(r, req.body, client.peer)
                client.reply_local(req, status, _dumps(doc), JSON, rid)

            r.spawn(run())
            return
        if method not in (b"GET", b"HEAD"):
            client.reply_local(req, 405, _dumps({"error_code": "METHOD_NOT_ALLOWED", "message": (
                "use GET here (POST /admin/settings changes settings)")}), JSON, rid)
            return
        if path == b"/admin/state":
            client.reply_local(req, 200, _dumps(r.state()), JSON, rid)
        elif path == b"/admin/changes":
            after = _after(req.url)
            if after is None:
                client.reply_local(req, 400, _dumps({"error": "'after' must be a change number (0 for all)"}),
                                   JSON, rid)
                return
            doc: dict[str, Any] = {"changes": [e.to_dict() for e in r.changes.events(after)],
                   "log": str(r.changes.path) if r.changes.path else None}
            client.reply_local(req, 200, _dumps(doc), JSON, rid)
        else:
            client.reply_local(req, 404, _dumps({"error": f"no admin route {path.decode('latin-1')}; see "
                                                 "/admin/state, /admin/changes, POST /admin/settings"}), JSON, rid)
        return
    if path not in (b"/health", b"/ping", b"/v2/health/live", b"/v2/health/ready") and r._token is not None \
            and not r.authorized(auth, r._token):
        client.reply_local(req, 401, _dumps({"error_code": "UNAUTHENTICATED", "message": (
            "this router needs 'Authorization: Bearer <token>'")}), JSON, rid)
        return
    if method not in (b"GET", b"HEAD"):
        client.reply_local(req, 405, _dumps({"error_code": "METHOD_NOT_ALLOWED", "message": "use GET here"}),
                           JSON, rid)
        return
    ready = r.ready
    if path == b"/health":
        doc = {"status": "ok" if ready else "unavailable", "stable": r.config.stable,
               "arms": {a: {"up": sum(1 for b in bs if b.up), "backends": len(bs)} for a, bs in r.arms.items()}}
        client.reply_local(req, 200 if ready else 503, _dumps(doc), JSON, rid)
    elif path == b"/ping":
        client.reply_local(req, 200 if ready else 503, b"\n", JSON, rid)
    elif path == b"/v2/health/live":
        client.reply_local(req, 200, b'{"live":true}', JSON, rid)
    elif path == b"/v2/health/ready":
        client.reply_local(req, 200 if ready else 503, _dumps({"ready": ready}), JSON, rid)
    elif path == b"/metrics":
        from prometheus_client import CONTENT_TYPE_LATEST

        client.reply_local(req, 200, r.metrics.render(), CONTENT_TYPE_LATEST.encode(), rid)
    elif path.startswith(b"/router/shadow/segments"):
        status, body, ctype = _segments(r, path, req.url)
        client.reply_local(req, status, body, ctype, rid)
    else:
        client.reply_local(req, 404, _dumps({"error": f"no route {path.decode('latin-1')}"}), JSON, rid)


def _after(url: bytes) -> int | None:
    query = parse_qs(url.partition(b"?")[2].decode("latin-1"))
    raw = (query.get("after") or ["0"])[0]
    return int(raw) if raw.isdigit() else None


def _segments(r: Router, path: bytes, url: bytes) -> tuple[int, bytes, bytes]:
    """The shadow comparison log's closed segments, as the model server serves its prediction log's."""
    log_ = r.shadow.log if r.shadow is not None else None
    if log_ is None:
        return 404, _dumps({"error": "this router keeps no shadow log (no shadow arm, or no state_dir)"}), JSON
    tail = path.rsplit(b"/", 1)[-1]
    if tail.isdigit():
        seq = int(tail)
        found = [s for s in log_.segments(seq - 1) if s.seq == seq]
        if not found:
            return 404, _dumps({"error": f"no closed segment {seq}"}), JSON
        try:
            return 200, found[0].path.read_bytes(), segfmt.content_type(found[0].path)
        except OSError:
            return 404, _dumps({"error": f"segment {seq} was removed meanwhile"}), JSON
    after = _after(url)
    if after is None:
        return 400, _dumps({"error": "'after' must be a segment number (0 for all)"}), JSON
    from mlops_desktop.serving.lakesink import segments_payload

    return 200, _dumps(segments_payload(log_.segments(after)) | {"router": r.config.name}), JSON


# ----------------------------------------------------------------------------- changes

class _Refused(Exception):  # noqa: N818 - answered as an HTTP status
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def doc(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error_code": "INVALID_PARAMETER_VALUE" if self.status == 400 else "CONFLICT",
                               "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


async def change_settings(r: Router, body: bytes, source: str) -> tuple[int, dict[str, Any]]:
    """Check, apply, record. Returns (HTTP status, answer)."""
    import orjson

    try:
        doc = orjson.loads(body or b"null")
    except orjson.JSONDecodeError as exc:
        return 400, _Refused(400, f"the body is not JSON ({exc})").doc()
    lock = getattr(r, "_admin_lock", None)
    if lock is None:
        lock = r._admin_lock = asyncio.Lock()  # type: ignore[attr-defined]
    async with lock:
        try:
            return 200, await _change(r, doc, source)
        except _Refused as exc:
            return exc.status, exc.doc()


def _text(doc: dict[str, Any], key: str, limit: int) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _Refused(400, f"a change needs {key!r}: " + ("who makes it" if key == "actor" else "why it is made")
                       + " (text)", key)
    if len(value) > limit:
        raise _Refused(400, f"{key!r} is longer than {limit} characters", key)
    return value.strip()


async def _change(r: Router, doc: Any, source: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise _Refused(400, "the body must be a JSON object with actor, reason and the settings to change")
    unknown = sorted(set(doc) - _SETTINGS_KEYS)
    if unknown:
        raise _Refused(400, f"unknown setting(s) {', '.join(unknown)}; known: weights, kill_switch, shadow, "
                            "threshold (with actor and reason)", unknown[0])
    actor, reason = _text(doc, "actor", 200), _text(doc, "reason", 2000)
    if not set(doc) - {"actor", "reason"}:
        raise _Refused(400, "nothing to change: give weights, kill_switch, shadow or threshold")
    old = r.settings
    new = old
    parts: list[tuple[str, Any, Any]] = []  # (kind, before, after)
    if "weights" in doc:
        weights = doc["weights"]
        if not isinstance(weights, dict) or not weights:
            raise _Refused(400, "'weights' must map arm names to numbers, e.g. {\"v1\": 90, \"v2\": 10}", "weights")
        strange = sorted(set(weights) - set(r.arms))
        if strange:
            raise _Refused(400, f"no arm named {', '.join(strange)}; arms: {', '.join(r.arms)}", "weights")
        new = new.with_(weights=old.weights | {k: v for k, v in weights.items()})
        parts.append(("router.weights", old.weights, new.weights))
    if "kill_switch" in doc:
        value = doc["kill_switch"]
        if not isinstance(value, bool):
            raise _Refused(400, "'kill_switch' must be true (everything to the stable arm) or false", "kill_switch")
        new = new.with_(kill_switch=value)
        parts.append(("router.kill_switch", {"on": old.kill_switch, "stable": r.config.stable},
                      {"on": value, "stable": r.config.stable}))
    if "shadow" in doc:
        shadow = doc["shadow"]
        if r.shadow is None:
            raise _Refused(409, "this router has no shadow arm; add a [shadow] section to its config", "shadow")
        if not isinstance(shadow, dict) or not shadow or set(shadow) - {"enabled", "percent"}:
            raise _Refused(400, "'shadow' must be {\"enabled\": true|false, \"percent\": 0-100}", "shadow")
        enabled = shadow.get("enabled", old.shadow_enabled)
        if not isinstance(enabled, bool):
            raise _Refused(400, "'shadow.enabled' must be true or false", "shadow.enabled")
        try:
            percent = check_percent(shadow.get("percent", old.shadow_percent), "'shadow.percent'")
        except UsageError as exc:
            raise _Refused(400, exc.message, "shadow.percent") from None
        new = new.with_(shadow_enabled=enabled, shadow_percent=percent)
        parts.append(("router.shadow", {"arm": r.shadow.arm, "enabled": old.shadow_enabled,
                                        "percent": old.shadow_percent},
                      {"arm": r.shadow.arm, "enabled": enabled, "percent": percent}))
    try:
        check_weights(new.weights, r.shadow.arm if r.shadow is not None and new.shadow_enabled else None,
                      "the change")
    except UsageError as exc:
        raise _Refused(400, exc.message + (f" ({exc.hint})" if exc.hint else ""), "weights") from None
    push: dict[str, Any] = {}
    if "threshold" in doc:
        new, part, push = await _threshold(r, doc["threshold"], new, actor, reason)
        parts.append(part)
    events = []
    r.apply(new)
    try:
        save_settings(r.config.state_dir, new)
    except OSError as exc:
        log.error("router: cannot save the live settings in %s: %s", r.config.state_dir, exc.strerror)
    for kind, before, after in parts:
        if before == after:
            continue
        event = r.changes.append(kind, actor, reason, before, after, {"source": source})
        r.metrics.child(r.metrics.changes, kind).inc()
        events.append(event)
        log.warning("router %s: %s changed by %s (%s): %s -> %s", r.config.name, kind, actor, reason, before, after)
        if r.on_change is not None:
            try:
                r.on_change(event)
            except Exception:  # the change is made and logged; a failing listener must not undo it
                log.exception("router: a change listener failed")
    out: dict[str, Any] = {"changes": [e.to_dict() for e in events], "settings": new.to_dict()}
    if not events:
        out["message"] = "nothing changed: the settings were already so"
    if push:
        out["threshold_push"] = push
    return out


async def _threshold(r: Router, raw: Any, new: Settings, actor: str,
                     reason: str) -> tuple[Settings, tuple[str, Any, Any], dict[str, Any]]:
    if not isinstance(raw, dict) or "threshold" not in raw or set(raw) - {"arm", "threshold", "positive_class"}:
        raise _Refused(400, "'threshold' must be {\"arm\": NAME (default: every arm), \"threshold\": 0-1 or null "
                            "(the model's own choice), \"positive_class\": LABEL (optional)}", "threshold")
    arm = raw.get("arm")
    arms = list(r.arms) if arm is None else [arm]
    if any(a not in r.arms for a in arms):
        raise _Refused(400, f"no arm named {arm!r}; arms: {', '.join(r.arms)}", "threshold.arm")
    value = raw["threshold"]
    decision: dict[str, Any] | None
    if value is None:
        decision = None
    elif isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise _Refused(400, f"'threshold.threshold' must be a probability from 0 to 1, or null (got {value!r})",
                       "threshold.threshold")
    else:
        decision = {"threshold": float(value), "positive_class": raw.get("positive_class")}
    backends = [b for a in arms for b in r.arms[a]]
    results = await push_threshold(r, backends, decision, actor=actor, reason=reason)
    refused = [x for x in results if x["status"] and 400 <= x["status"] < 500]
    if refused:
        # undo where it took, so the arm never runs half on the new threshold
        done = [b for b, x in zip(backends, results, strict=True) if x["ok"]]
        for b in done:
            await push_threshold(r, [b], r.settings.thresholds.get(b.arm), actor=actor,
                                 reason=f"undo: {refused[0]['backend']} refused the change")
        raise _Refused(409 if refused[0]["status"] == 409 else 400,
                       f"backend {refused[0]['backend']} of arm {refused[0]['arm']!r} refused the threshold: "
                       f"{refused[0]['message']}", "threshold")
    before = {a: new.thresholds.get(a) for a in arms}
    thresholds = dict(new.thresholds) | dict.fromkeys(arms, decision)
    after = {a: thresholds[a] for a in arms}
    push = {"applied": [x["backend"] for x in results if x["ok"]],
            "pending": [{"backend": x["backend"], "why": x["message"]} for x in results if not x["ok"]]}
    return new.with_(thresholds=thresholds), ("router.threshold", before, after), push


async def push_threshold(r: Router, backends: list[Backend], decision: dict[str, Any] | None, *,
                         actor: str = "router", reason: str = "", reconcile: bool = False) -> list[dict[str, Any]]:
    """PUT the decision to each backend's /admin/settings (the model server applies it to probabilities)."""
    import orjson

    from mlops_desktop.serving.router_upstream import fetch

    token = r.config.admin_token
    body = orjson.dumps({"threshold": decision["threshold"] if decision else None,
                         "positive_class": decision.get("positive_class") if decision else None,
                         "actor": actor, "reason": reason or ("reconcile: the backend is back; the arm's live "
                                                               "threshold" if reconcile else "router change")})
    headers = [("content-type", "application/json")]
    if token:
        headers.append(("authorization", f"Bearer {token}"))

    async def one(b: Backend) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": b.url, "arm": b.arm, "ok": False, "status": 0, "message": ""}
        try:
            status, answer = await fetch(b.address, "PUT", "/admin/settings", body=body, headers=headers,
                                         timeout=r.config.connect_timeout_s + 3)
        except (OSError, TimeoutError) as exc:
            out["message"] = f"not reachable ({exc.strerror if isinstance(exc, OSError) and exc.strerror else exc or 'timeout'}); it gets the threshold when it is back"
            return out
        out["status"] = status
        out["ok"] = status == 200
        if status != 200:
            try:
                out["message"] = str(orjson.loads(answer).get("message") or answer[:200].decode("utf-8", "replace"))
            except (orjson.JSONDecodeError, AttributeError):
                out["message"] = answer[:200].decode("utf-8", "replace")
            if status >= 500:
                out["message"] += "; it gets the threshold again when its health checks pass"
        if reconcile:
            log.warning("router: threshold for %s re-applied on %s: %s", b.arm, b.url,
                        "ok" if out["ok"] else out["message"])
        return out

    return list(await asyncio.gather(*(one(b) for b in backends)))
