"""A client of the router's admin API (the CLI, the GUI, deployments and monitoring's revert use this one).

Plain urllib, no event loop: each call is one request. Errors come back as `MlopsError`s worded by the router.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from mlops_desktop.errors import MlopsError, UsageError


class AdminClient:
    def __init__(self, url: str, token: str | None, *, timeout: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, doc: Any = None) -> Any:
        data = json.dumps(doc).encode() if doc is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 - http(s) only
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                message = json.loads(body).get("message") or json.loads(body).get("error")
            except (ValueError, AttributeError):
                message = body[:300].decode("utf-8", "replace")
            cls = UsageError if 400 <= exc.code < 500 else MlopsError
            raise cls(f"the router at {self.url} refused: {message} (HTTP {exc.code})") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MlopsError(f"the router at {self.url} cannot be reached: {reason}",
                             hint="is it running? `mlops-desktop router list`") from None

    def state(self) -> dict[str, Any]:
        return dict(self._call("GET", "/admin/state"))

    def changes(self, after: int = 0) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/admin/changes?after={int(after)}")["changes"])

    def change(self, *, actor: str, reason: str, **settings: Any) -> dict[str, Any]:
        """POST /admin/settings: any of weights={...}, kill_switch=bool, shadow={...}, threshold={...}."""
        return dict(self._call("POST", "/admin/settings", {"actor": actor, "reason": reason, **settings}))


def parse_weights(items: list[str]) -> dict[str, float]:
    """`v1=90 v2=10` -> {"v1": 90.0, "v2": 10.0}, refused in words."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name] = float(value)
        except ValueError:
            raise UsageError(f"{item!r} is not ARM=WEIGHT", hint="e.g. v1=90 v2=10") from None
    if not out:
        raise UsageError("give at least one ARM=WEIGHT", hint="e.g. v1=90 v2=10")
    return out
