"""Model-server throughput and latency: ours vs `mlflow models serve`, and the limits of the same HTTP stack.

One fitted scikit-learn pipeline (StandardScaler + LogisticRegression, 20 numeric features, 3 classes) is served by:
  ours           mlops_desktop.serving (adaptive batching, prediction log on)
  ours_nolog     the same with the prediction log off (what logging costs)
  ours_onnx      ours on the path a registered scikit-learn version serves by default: its verified ONNX
                 translation (onnxruntime), prediction log on
  mlflow         `mlflow models serve --env-manager local` (MLflow 3.x, its own uvicorn app, 1 worker)
  per_request    a minimal raw-ASGI app on the same stack (uvicorn + httptools + uvloop + orjson) that calls the
                 model once per request: the limit without batching
  constant       the same stack answering a constant: the HTTP limit
  starlette_constant / fastapi_constant   the constant endpoint on Starlette and FastAPI (the stack choice)
Load: Debian's wrk (one thread, a Lua body), pinned to another core than the server (taskset), at concurrency
1, 8 and 64 with single-row and 100-row MLflow `dataframe_split` bodies.
Last line: one JSON object with every figure and the ratios.

    .venv/bin/python benchmarks/serving.py [--duration 8] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
N_FEATURES = 20


# ----------------------------------------------------------------------------- the model and the apps (in servers)

def _signature() -> Any:
    from mlops_desktop.registry.signature import ColumnSpec, Signature

    return Signature(tuple(ColumnSpec(f"x{i}", "float64") for i in range(N_FEATURES)),
                     (ColumnSpec("prediction", "int64"),), task="classification", classes=(0, 1, 2))


def _load_model() -> Any:
    import joblib  # the file this benchmark wrote a moment ago (never a file from elsewhere)

    return joblib.load(os.environ["BENCH_MODEL"])


def bench_predictor(name: str | None = None, version: str | None = None) -> Any:
    """--factory entry point for our server."""
    from mlops_desktop.registry.flavors.sklearn import SklearnPredictor

    return SklearnPredictor(_load_model(), _signature())


def bench_predictor_onnx(name: str | None = None, version: str | None = None) -> Any:
    """--factory entry point: the same pipeline on the path a registered scikit-learn version serves by default,
    its ONNX translation, built and verified against scikit-learn by the registry's own fast-path code."""
    import numpy as np

    from mlops_desktop.registry import fastpath
    from mlops_desktop.registry.flavors.onnx import OnnxPredictor, session

    stage = Path(tempfile.mkdtemp(prefix="bench-onnx-"))
    rng = np.random.default_rng(7)
    sample = {f"x{i}": rng.normal(size=256) for i in range(N_FEATURES)}
    record = fastpath.build(_load_model(), _signature(), stage, [("held-out", sample)])
    if record.get("status") != "verified":
        raise RuntimeError(f"the ONNX fast path did not verify: {record.get('reason')}")
    return OnnxPredictor(session(stage / record["file"]), _signature(), flavor="sklearn",
                         layout=record["layout"], classes=record["classes"])


def per_request_app() -> Any:
    """uvicorn factory: parse the MLflow split body, one model call per request, {"predictions": [...]}."""
    import numpy as np
    import orjson

    from mlops_desktop.registry.flavors.sklearn import SklearnPredictor

    predictor = SklearnPredictor(_load_model(), _signature())
    names = [f"x{i}" for i in range(N_FEATURES)]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        doc = orjson.loads(body)["dataframe_split"]
        cols = list(zip(*doc["data"], strict=True))
        out = predictor.predict({n: np.asarray(cols[i], dtype=float) for i, n in enumerate(names)})
        payload = orjson.dumps({"predictions": out["prediction"]}, option=orjson.OPT_SERIALIZE_NUMPY)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})

    return app


def constant_app() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"predictions":[1]}'})

    return app


def starlette_constant_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def invocations(request: Request) -> Response:
        await request.body()
        return Response(b'{"predictions":[1]}', media_type="application/json")

    return Starlette(routes=[Route("/invocations", invocations, methods=["POST"])])


def fastapi_constant_app() -> Any:
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    api = FastAPI()

    async def invocations(request: Request) -> Response:
        await request.body()
        return Response(b'{"predictions":[1]}', media_type="application/json")

    # this module's annotations are strings, and FastAPI resolves them in module globals, where Request is not:
    # without the real class it takes `request` for a query parameter and answers 422
    invocations.__annotations__ = {"request": Request, "return": Response}
    api.post("/invocations")(invocations)
    return api


# ----------------------------------------------------------------------------- driver

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - our own loopback server
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server not ready at {url}")


def body(rows: int) -> str:
    import numpy as np

    rng = np.random.default_rng(rows)
    data = np.round(rng.normal(size=(rows, N_FEATURES)), 4).tolist()
    return json.dumps({"dataframe_split": {"columns": [f"x{i}" for i in range(N_FEATURES)], "data": data}})


LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("{body}"):read("*a")
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %f %f\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(url: str, lua: Path, conns: int, duration: float, core: str) -> dict[str, float]:
    cmd = ["taskset", "-c", core, "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
           "-s", str(lua), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    requests, dur_us, sock_err, status_err, p50, p99 = line.split()[1:]
    seconds = int(dur_us) / 1e6
    ok = int(requests) - int(status_err)
    return {"rps": round(ok / seconds, 1), "requests": ok, "p50_ms": round(float(p50) / 1000, 3),
            "p99_ms": round(float(p99) / 1000, 3), "errors": int(sock_err) + int(status_err)}


def start(kind: str, port: int, env: dict[str, str], tmp: Path, core: str) -> subprocess.Popen[bytes]:
    py = sys.executable
    pin = ["taskset", "-c", core]
    bench = ["--factory", "serving:bench_predictor", "--name", "bench", "--version", "1", "--port", str(port),
             "--max-body-mb", "64"]
    if kind == "ours":
        cmd = [*pin, py, "-m", "mlops_desktop.serving", *bench, "--log-dir", str(tmp / "predlog")]
    elif kind == "ours_onnx":
        onnx = [a.replace("serving:bench_predictor", "serving:bench_predictor_onnx") for a in bench]
        cmd = [*pin, py, "-m", "mlops_desktop.serving", *onnx, "--log-dir", str(tmp / "predlog_onnx")]
    elif kind == "ours_nolog":
        cmd = [*pin, py, "-m", "mlops_desktop.serving", *bench, "--no-log"]
    elif kind == "mlflow":
        cmd = [*pin, str(Path(py).with_name("mlflow")), "models", "serve", "-m", str(tmp / "mlflow_model"),
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    else:
        factory = {"per_request": "per_request_app", "constant": "constant_app",
                   "starlette_constant": "starlette_constant_app", "fastapi_constant": "fastapi_constant_app"}[kind]
        cmd = [*pin, py, "-m", "uvicorn", "--factory", f"serving:{factory}", "--port", str(port), "--loop", "uvloop",
               "--http", "httptools", "--no-access-log", "--log-level", "warning", "--backlog", "2048"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run (default 8)")
    ap.add_argument("--quick", action="store_true", help="c64 single-row only (a smoke run)")
    ap.add_argument("--servers", default="ours,ours_nolog,ours_onnx,mlflow,per_request,constant,starlette_constant,"
                                         "fastapi_constant")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("benchmarks/serving.py: needs Debian's wrk (apt-get install wrk; scripts/setup.sh test installs it)",
              file=sys.stderr)
        return 2
    cores = os.sched_getaffinity(0)
    server_core, wrk_core = (str(min(cores)), str(max(cores))) if len(cores) > 1 else ("0", "0")
    servers = args.servers.split(",")
    shapes = [(64, 1)] if args.quick else [(c, r) for r in (1, 100) for c in (1, 8, 64)]
    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    try:
        model_file = prepare_model(tmp)
        env = dict(os.environ, BENCH_MODEL=str(model_file), PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]),
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                   MLFLOW_TRACKING_URI=f"file:{tmp / 'mlruns'}")
        lua_files = {}
        for rows in {r for _, r in shapes}:
            (tmp / f"body{rows}.json").write_text(body(rows))
            lua = tmp / f"body{rows}.lua"
            lua.write_text(LUA.replace("{body}", str(tmp / f"body{rows}.json")))
            lua_files[rows] = lua
        results: dict[str, dict[str, Any]] = {}
        for kind in servers:
            port = free_port()
            proc = start(kind, port, env, tmp, server_core)
            try:
                health = f"http://127.0.0.1:{port}/health" if kind.startswith("ours") else \
                    f"http://127.0.0.1:{port}/ping" if kind == "mlflow" else None
                if health:
                    wait_ready(health, proc)
                else:
                    wait_port(port, proc)
                url = f"http://127.0.0.1:{port}/invocations"
                run_wrk(url, lua_files[shapes[0][1]], 8, 2.0, wrk_core)  # warm-up
                for conns, rows in shapes:
                    if kind.endswith("_constant") and rows != 1:
                        continue
                    if kind in ("starlette_constant", "fastapi_constant") and conns != 64:
                        continue
                    figures = run_wrk(url, lua_files[rows], conns, args.duration, wrk_core)
                    results.setdefault(kind, {})[f"c{conns}_rows{rows}"] = figures
                    print(f"{kind:20s} c={conns:<3d} rows={rows:<4d} {figures}", file=sys.stderr, flush=True)
            finally:
                stop(proc)
        out = {"benchmark": "serving", "duration_s": args.duration, "server_core": server_core,
               "wrk_core": wrk_core, "shared_machine": True, "results": results, "ratios": ratios(results)}
        print(json.dumps(out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


def prepare_model(tmp: Path) -> Path:
    """Fit the pipeline once; save it for our server and the per-request app (joblib) and for MLflow."""
    import joblib
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(5000, N_FEATURES)), columns=[f"x{i}" for i in range(N_FEATURES)])
    y = (x["x0"] > 0.5).astype(int) + (x["x1"] > 0).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    path = tmp / "model.joblib"
    joblib.dump(model, path)
    mlflow.sklearn.save_model(model, str(tmp / "mlflow_model"), input_example=x.head(2))
    return path


def _get(results: dict[str, Any], kind: str, key: str, field: str = "rps") -> float | None:
    value = results.get(kind, {}).get(key, {}).get(field)
    return float(value) if value is not None else None


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    def div(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    key = "c64_rows1"
    ours = _get(results, "ours", key)
    out: dict[str, Any] = {
        "ours_vs_mlflow_c64_rows1": div(ours, _get(results, "mlflow", key)),
        "ours_vs_per_request_c64_rows1": div(ours, _get(results, "per_request", key)),
        "ours_vs_constant_c64_rows1": div(ours, _get(results, "constant", key)),
        "ours_p99_ms_c64_rows1": _get(results, "ours", key, "p99_ms"),
        "log_on_vs_off_c64_rows1": div(ours, _get(results, "ours_nolog", key)),
        "starlette_vs_raw_constant_c64": div(_get(results, "starlette_constant", key),
                                             _get(results, "constant", key)),
        "fastapi_vs_raw_constant_c64": div(_get(results, "fastapi_constant", key), _get(results, "constant", key)),
    }
    for k in sorted(results.get("ours", {})):
        out[f"ours_vs_mlflow_{k}"] = div(_get(results, "ours", k), _get(results, "mlflow", k))
        out[f"ours_vs_per_request_{k}"] = div(_get(results, "ours", k), _get(results, "per_request", k))
    onnx = _get(results, "ours_onnx", key)
    out["ours_onnx_vs_mlflow_c64_rows1"] = div(onnx, _get(results, "mlflow", key))
    out["ours_onnx_vs_constant_c64_rows1"] = div(onnx, _get(results, "constant", key))
    out["ours_onnx_p99_ms_c64_rows1"] = _get(results, "ours_onnx", key, "p99_ms")
    out["goals"] = {
        "vs_mlflow_ge_25x": (out["ours_vs_mlflow_c64_rows1"] or 0) >= 25,
        "vs_per_request_ge_2x": (out["ours_vs_per_request_c64_rows1"] or 0) >= 2,
        "vs_constant_ge_0.4": (out["ours_vs_constant_c64_rows1"] or 0) >= 0.4,
        "p99_le_50ms": (out["ours_p99_ms_c64_rows1"] or 1e9) <= 50,
        "log_cost_le_5pct": (out["log_on_vs_off_c64_rows1"] or 0) >= 0.95,
    }
    return out


if __name__ == "__main__":
    raise SystemExit(main())
