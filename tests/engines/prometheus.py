"""A real Prometheus (Debian's package) per test on 127.0.0.1, with a generated config, and promtool."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .common import ENV_PROMETHEUS, ENV_PROMTOOL, EngineUnavailable, free_port, wait_until


def prometheus_binary() -> str:
    path = os.environ.get(ENV_PROMETHEUS) or shutil.which("prometheus") or "/usr/bin/prometheus"
    if not os.access(path, os.X_OK):
        raise EngineUnavailable("Prometheus is not installed (apt-get install prometheus, or bash scripts/infra/install.sh prometheus)")
    return path


def promtool_binary() -> str:
    path = os.environ.get(ENV_PROMTOOL) or shutil.which("promtool") or "/usr/bin/promtool"
    if not os.access(path, os.X_OK):
        raise EngineUnavailable("promtool is not installed (it comes with Debian's prometheus package)")
    return path


def duration(seconds: float) -> str:
    """A Prometheus duration (integers with a unit only: 0.5 -> "500ms")."""
    return f"{max(1, round(seconds * 1000))}ms"


def scrape_config(job: str, targets: list[str], interval: float = 1.0, metrics_path: str = "/metrics") -> dict[str, Any]:
    return {"job_name": job, "scrape_interval": duration(interval), "scrape_timeout": duration(min(interval, 10)),
            "metrics_path": metrics_path, "static_configs": [{"targets": targets}]}


class PrometheusServer:
    """One Prometheus process; its HTTP API at `url`. Config as a dict (written as JSON, which is valid YAML)."""

    def __init__(self, workdir: Path, scrape_configs: list[dict[str, Any]], rule_files: list[Path] | None = None,
                 evaluation_interval: float = 1.0) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self.write_config(scrape_configs, rule_files, evaluation_interval)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [prometheus_binary(), f"--config.file={self.config_path}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle", "--log.level=warn",
             "--storage.tsdb.retention.time=1h"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_until(lambda: self.proc.poll() is not None or self._ready(), 30, f"Prometheus to be ready on {self.url}")
        except TimeoutError as exc:
            self.stop()
            raise EngineUnavailable(f"{exc}; log: {self.log_path.read_text()[-2000:]}") from None
        if self.proc.poll() is not None:
            self._log.close()
            raise RuntimeError(f"prometheus exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")

    def write_config(self, scrape_configs: list[dict[str, Any]], rule_files: list[Path] | None = None,
                     evaluation_interval: float = 1.0) -> None:
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": duration(evaluation_interval)},
                  "rule_files": [str(p) for p in rule_files or []], "scrape_configs": scrape_configs}
        self.config_path.write_text(json.dumps(config, indent=1))

    def reload(self) -> None:
        """Re-read the config (after write_config) through the lifecycle API."""
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            if r.status != 200:
                raise RuntimeError(f"reload answered {r.status}")

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
            return bool(r.status == 200)

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/PATH?params; the `data` of a successful answer, else RuntimeError with Prometheus's error."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = json.loads(e.read() or b"{}")
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus {path}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector (each item: metric labels and [time, "value"])."""
        data = self.api("query", query=promql)
        return list(data["result"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets")["activeTargets"])

    def wait_target_up(self, job: str, timeout: float = 30) -> dict[str, Any]:
        def up() -> dict[str, Any] | None:
            for t in self.targets():
                if t["labels"].get("job") == job and t["health"] == "up":
                    return t
            return None
        return wait_until(up, timeout, f"Prometheus target of job {job} to be up")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def promtool(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run promtool (e.g. `promtool("check", "rules", path)`); the caller reads returncode and output."""
    return subprocess.run([promtool_binary(), *args], capture_output=True, text=True, timeout=timeout, check=False)
