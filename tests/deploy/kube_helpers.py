"""Helpers of the Kubernetes target's tests: real model images in the test registry, a backend on a test namespace,
HTTP to a deployment's NodePort."""

from __future__ import annotations

import io
import json
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROWS = [{"tenure": 3.0, "spend": 80.0, "plan": "basic", "calls": 4},
        {"tenure": 40.0, "spend": 20.0, "plan": "pro", "calls": 0}]


@dataclass
class KubeImages:
    """Images pushed to the test registry: two model versions, and two that must fail a rollout."""

    model: str
    home: str = ""           # the workspace where the model's versions are registered
    good: dict[int, str] = field(default_factory=dict)   # version -> REGISTRY/...:vN
    crash: str = ""          # exits at once (CrashLoopBackOff)
    not_ready: str = ""      # runs, but /v2/health/ready never answers 200
    seconds: dict[str, float] = field(default_factory=dict)


def register_versions(ws: Any, tmp_path: Path, name: str, count: int = 2) -> list[int]:
    """`count` versions of `name`, each a real fitted pipeline registered from a real run (the registry's path)."""
    from sklearn.linear_model import LogisticRegression

    from mlops_desktop import registry
    from tests.registry.conftest import churn_frame, fit_pipeline, log_sklearn_run

    out = []
    for i in range(count):
        frame = churn_frame(300, seed=i)
        model = fit_pipeline(frame, LogisticRegression(max_iter=200, C=1.0 + i))
        run = log_sklearn_run(ws, tmp_path, model, frame, name=f"v{i + 1}")
        out.append(int(registry.register(ws, run, name).version.version))
    return out


def derived_image(engine: Any, base_ref: str, tag: str, cmd: list[str]) -> str:
    """FROM a pushed model image with another CMD, built and pushed through the Docker SDK (stream read for errors)."""
    client = engine.client(timeout=600)
    dockerfile = f"FROM {base_ref}\nCMD {json.dumps(cmd)}\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buf.seek(0)
    client.images.build(fileobj=buf, custom_context=True, tag=tag, rm=True)
    repo, _, version = tag.rpartition(":")
    for line in client.api.push(repo, tag=version, auth_config=engine.auth_config, stream=True, decode=True):
        if "error" in line or "errorDetail" in line:
            raise RuntimeError(f"push of {tag} failed: {line}")
    client.close()
    return tag


def build_images(ws: Any, engine: Any, scope: Any, tmp_path: Path) -> KubeImages:
    from mlops_desktop.containers import build_image, push_image

    model = scope.name("m")[:40].rstrip("-")
    images = KubeImages(model=model, home=str(ws.root))
    versions = register_versions(ws, tmp_path, model)
    for v in versions:
        t0 = time.monotonic()
        rec = build_image(ws, f"{model}/{v}", base=engine.base_image, docker_host=engine.host,
                          tag=f"{scope.name('model')}:v{v}")
        images.seconds[f"build v{v}"] = time.monotonic() - t0
        pushed = push_image(ws, rec, engine.registry, docker_host=engine.host, auth_config=engine.auth_config)
        images.good[v] = f"{engine.registry}/{scope.name('model')}:v{v}"
        del pushed
    base = images.good[versions[0]]
    images.crash = derived_image(engine, base, f"{engine.registry}/{scope.name('model')}:crash",
                                 ["python3", "-c", "import sys; print('crashing on purpose', flush=True); sys.exit(3)"])
    images.not_ready = derived_image(engine, base, f"{engine.registry}/{scope.name('model')}:not-ready",
                                     ["python3", "-m", "http.server", "8080"])
    return images


def http(url: str, *, method: str = "GET", doc: Any = None, headers: dict[str, str] | None = None,
         timeout: float = 10) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, json.loads(body or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def predict(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    return http(url + "/invocations", method="POST", doc={"dataframe_records": ROWS}, headers=headers)


def wait_answers(url: str, version: int, timeout: float = 30) -> float:
    """Seconds until the Service answers /version with `version` (kube-proxy applies endpoints ~1 s late)."""
    t0 = time.monotonic()
    last: Any = None
    while time.monotonic() - t0 < timeout:
        try:
            status, _, doc = http(url + "/version", timeout=3)
            last = (status, doc)
            if status == 200 and str(doc.get("version")) == str(version):
                return time.monotonic() - t0
        except (OSError, ValueError) as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer version {version} within {timeout} s (last: {last})")
