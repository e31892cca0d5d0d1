"""The collector: scrape every target of a deployment each interval (default 2 s) into monitored series.

Per tick and target: `up` (1, or 0 when it does not answer within the timeout), and, from the difference to its
previous scrape, `requests_per_s`, `error_rate` (5xx share), `p50/p95/p99_latency` (seconds, from the histogram
increments) and `in_flight`. A target that does not answer gets NaN points ("no data"), never a silent gap.
Per arm (labels arm, version) and for the deployment ({}): the same figures from merged windows — the router's view
when a router answered (what clients saw), else the replicas' sum — plus `targets_down`. Host load (CPU, memory,
load average, GPUs) comes from the execution inventory every `host_interval_s`, off the scrape path.

Points go to a bounded in-memory ring (the live dashboard) at once and to SQLite (series.py) every `flush_s`;
`listeners` get each tick's points (the rule engine, the GUI). Memory stays bounded: the ring keeps `ring_points`
per series and unflushed points beyond `max_pending` are dropped, oldest first, and counted.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import math
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlops_desktop.monitoring import scrape
from mlops_desktop.monitoring.series import LiveRing, Point, SeriesStore, label_key
from mlops_desktop.monitoring.targets import ScrapeTarget

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace

log = logging.getLogger(__name__)

TARGET_SERIES = ("requests_per_s", "error_rate", "p50_latency", "p95_latency", "p99_latency")
QUANTILES = (("p50_latency", 0.5), ("p95_latency", 0.95), ("p99_latency", 0.99))


@dataclass
class Tick:
    ts: float
    points: list[Point]
    down: list[str] = field(default_factory=list)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        key = label_key(labels)
        for p in self.points:
            if p.name == name and p.labels == key:
                return p.value
        return None


def fetch_metrics(url: str, timeout: float) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=timeout) as resp:  # noqa: S310 - deployment endpoints
        return resp.read().decode("utf-8", "replace")


class Collector:
    def __init__(self, ws: Workspace | None, deployment: str, targets: Callable[[], list[ScrapeTarget]], *,
                 interval_s: float = 2.0, timeout_s: float = 1.0, flush_s: float = 10.0,
                 host_interval_s: float = 10.0, ring_points: int = 1800, max_pending: int = 200_000,
                 store: SeriesStore | None = None) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.deployment = deployment
        self.targets = targets
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.flush_s = flush_s
        self.host_interval_s = host_interval_s
        self.store = store if store is not None else (SeriesStore(ws.db) if ws is not None else None)
        self.ring = LiveRing(ring_points)
        self.max_pending = max_pending
        self.listeners: list[Callable[[Tick], None]] = []
        self.dropped_points = 0
        self._prev: dict[str, tuple[float, scrape.Counters]] = {}
        self._pending: list[Point] = []
        self._last_flush = time.monotonic()
        self._pool = cf.ThreadPoolExecutor(max_workers=8, thread_name_prefix="mlops-scrape")
        self._host_future: cf.Future[list[Point]] | None = None
        self._last_host = -math.inf
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one tick ----------------------------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> Tick:
        targets = self.targets()
        now = time.time() if now is None else now
        futures = {t: self._pool.submit(fetch_metrics, t.url, self.timeout_s) for t in targets}
        points: list[Point] = []
        down: list[str] = []
        router_windows: dict[str, scrape.Window] = {}
        replica_windows: dict[str, scrape.Window] = {}
        in_flight = 0.0
        routers_up = 0
        arm_versions = {t.arm: t.version for t in targets if t.arm and t.version and t.role != "router"}
        for t, fut in futures.items():
            labels = label_key(t.labels())
            try:
                text = fut.result(self.timeout_s + 5)
                samples = scrape.parse_text(text)
            except (OSError, ValueError, cf.TimeoutError) as exc:
                down.append(t.name)
                self._prev.pop(t.url, None)
                log.debug("scrape of %s failed: %s", t.url, exc)
                points.append(Point("up", labels, now, 0.0))
                points += [Point(name, labels, now, math.nan) for name in (*TARGET_SERIES, "in_flight")]
                continue
            counters = scrape.counters(samples, "router" if t.role == "router" else "replica", t.arm)
            prev = self._prev.get(t.url)
            self._prev[t.url] = (now, counters)
            seconds = now - prev[0] if prev else 0.0
            wins = scrape.windows(prev[1] if prev else None, counters, seconds)
            merged = scrape.Window(seconds=seconds)
            for arm, w in wins.items():
                merged.add(w)
                if t.role == "router":
                    router_windows.setdefault(arm, scrape.Window(seconds=seconds)).add(w)
                else:
                    replica_windows.setdefault(arm, scrape.Window(seconds=seconds)).add(w)
                    if t.version:
                        arm_versions.setdefault(arm, t.version)
            points.append(Point("up", labels, now, 1.0))
            points.append(Point("in_flight", labels, now, counters.in_flight))
            if t.role == "router":
                routers_up += 1
                in_flight += counters.in_flight
            elif not any(x.role == "router" for x in targets):
                in_flight += counters.in_flight
            if prev is not None:
                points += _window_points(merged, labels, now)
        by_arm = router_windows if routers_up else replica_windows
        total = scrape.Window()
        for arm, w in sorted(by_arm.items()):
            total.add(w)
            arm_labels = {"arm": arm} | ({"version": arm_versions[arm]} if arm in arm_versions else {})
            if w.seconds > 0:
                points += _window_points(w, label_key(arm_labels), now)
        everyone = label_key({})
        points.append(Point("targets_down", everyone, now, float(len(down))))
        points.append(Point("targets", everyone, now, float(len(targets))))
        if len(down) == len(targets) and targets:
            points += [Point(name, everyone, now, math.nan) for name in (*TARGET_SERIES, "in_flight")]
        else:
            points.append(Point("in_flight", everyone, now, in_flight))
            if total.seconds > 0:
                points += _window_points(total, everyone, now)
        points += self._host_points()
        result = Tick(now, points, down)
        self.ring.add(points)
        self._queue(points)
        for listener in list(self.listeners):
            try:
                listener(result)
            except Exception:  # a listener's bug must not stop collection
                log.exception("monitoring listener failed")
        return result

    def _host_points(self) -> list[Point]:
        out: list[Point] = []
        fut = self._host_future
        if fut is not None and fut.done():
            self._host_future = None
            with contextlib.suppress(Exception):
                out = fut.result()
        if self.host_interval_s > 0 and self._host_future is None and \
                time.monotonic() - self._last_host >= self.host_interval_s:
            self._last_host = time.monotonic()
            self._host_future = self._pool.submit(host_points)
        return out

    # -- persistence -------------------------------------------------------------------------------------------
    def _queue(self, points: list[Point]) -> None:
        self._pending += points
        if len(self._pending) > self.max_pending:
            extra = len(self._pending) - self.max_pending
            self.dropped_points += extra
            del self._pending[:extra]
        if time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> int:
        self._last_flush = time.monotonic()
        if self.store is None or not self._pending:
            return 0
        batch, self._pending = self._pending, []
        try:
            return self.store.append(self.deployment, batch)
        except Exception as exc:  # the store is busy/full: keep the points (bounded) and try again next flush
            log.warning("monitoring series of %s not written yet: %s", self.deployment, exc)
            self._pending = batch + self._pending
            return 0

    # -- the loop ----------------------------------------------------------------------------------------------
    def start(self) -> Collector:
        self._thread = threading.Thread(target=self._run, name=f"mlops-collector-{self.deployment}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("monitoring tick of %s failed", self.deployment)
            next_at += self.interval_s
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (a slow tick): skip, do not burst
                next_at = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _window_points(w: scrape.Window, labels: str, now: float) -> list[Point]:
    out = [Point("requests_per_s", labels, now, w.rate), Point("error_rate", labels, now, w.error_rate)]
    for name, q in QUANTILES:
        out.append(Point(name, labels, now, w.quantile(q) if w.requests > 0 else math.nan))
    return out


def host_points() -> list[Point]:
    """This machine's load as series labelled host=local (the execution inventory's probe)."""
    from mlops_desktop.execution.inventory import collect_local

    inv = collect_local()
    labels = label_key({"host": "local"})
    now = time.time()
    out = []
    if inv.cpu_busy_pct is not None:
        out.append(Point("host.cpu_busy_pct", labels, now, float(inv.cpu_busy_pct)))
    if inv.load1 is not None:
        out.append(Point("host.load1", labels, now, float(inv.load1)))
    if inv.memory_total_mib and inv.memory_available_mib is not None:
        out.append(Point("host.memory_used_pct", labels, now,
                         100.0 * (1 - inv.memory_available_mib / inv.memory_total_mib)))
    for gpu in inv.gpus:
        g = label_key({"host": "local", "gpu": str(getattr(gpu, "index", 0))})
        util = getattr(gpu, "utilization_pct", None)
        if util is not None:
            out.append(Point("host.gpu_util_pct", g, now, float(util)))
    return out
