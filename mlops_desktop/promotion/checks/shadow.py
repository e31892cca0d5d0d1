"""Shadow traffic on live samples: the router mirrors requests to the candidate's arm; this check reads the router's
comparison log from when the request started, for N requests or T minutes (whichever comes first), and judges
agreement with the champion, the candidate's latency and its errors. Until then it waits (the pipeline resumes).

The compared requests are joined with both arms' prediction logs into the review's live samples (disagreements
first), which the reviewer labels; the drift of the shadowed inputs against the candidate's training data is part
of the evidence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mlops_desktop.errors import MlopsError, UsageError
from mlops_desktop.promotion.checks.base import CheckContext, CheckResult, Keys
from mlops_desktop.promotion.rules import Rule, evaluate_all, parse_rules

if TYPE_CHECKING:
    import polars as pl

METRICS = ("requests", "agreement", "request_agreement", "error_rate", "p50_latency_ms", "p95_latency_ms",
           "p99_latency_ms")
DEFAULT_RULES = ("agreement >= 0.9", "error_rate <= 0.01")


def comparison_folder(ws: Any, router: str) -> Path:
    """Where a managed router writes its shadow comparisons."""
    from mlops_desktop.serving import router_config, router_manager

    managed = router_manager.get(ws, router)
    state = None
    try:
        state = router_config.load(Path(managed.config)).state_dir
    except MlopsError:
        state = None  # the config moved since: the managed default is where it wrote
    return Path(state or Path(managed.run_dir) / "state") / "shadow"


def fetch_segments(url: str, folder: Path, *, timeout: float = 10.0) -> int:
    """Copy a router's closed comparison segments that `folder` lacks (GET /router/shadow/segments): a router in
    a container or on another host shares its shadow log this way. Returns how many were fetched."""
    import json
    import urllib.error
    import urllib.request

    from mlops_desktop.serving.segfmt import save_pulled

    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise UsageError(f"router_url {url!r} must start with http:// or https://")
    folder.mkdir(parents=True, exist_ok=True)
    have = [int(p.stem) for p in folder.glob("*.parquet") if p.stem.isdigit()]
    try:
        with urllib.request.urlopen(f"{base}/router/shadow/segments?after={max(have, default=0)}",  # noqa: S310
                                    timeout=timeout) as resp:
            doc = json.loads(resp.read())
        fetched = 0
        for seg in doc.get("segments", []):
            seq = int(seg["seq"])
            with urllib.request.urlopen(f"{base}/router/shadow/segments/{seq}", timeout=timeout) as resp:  # noqa: S310
                data = resp.read()
            save_pulled(data, folder / f"{seq:010d}.parquet")  # column lines (no pyarrow there) become Parquet
            fetched += 1
    except urllib.error.HTTPError as exc:
        raise MlopsError(f"the router at {base} refused its shadow log: HTTP {exc.code}",
                         hint="is a shadow arm configured, with a state_dir?") from None
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MlopsError(f"cannot read the shadow log of the router at {base}: {reason}") from None
    return fetched


def read_comparisons(folder: Path, arm: str, since: float) -> pl.DataFrame:
    import polars as pl

    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    frames = []
    for f in files:
        try:
            frames.append(pl.read_parquet(f))
        except (OSError, pl.exceptions.PolarsError):
            continue
    if not frames:
        return pl.DataFrame(schema={"request_id": pl.String, "ts": pl.Datetime("us", "UTC"), "primary_arm": pl.String,
                                    "shadow_arm": pl.String, "primary_status": pl.Int16, "shadow_status": pl.Int16,
                                    "primary_latency_ms": pl.Float64, "shadow_latency_ms": pl.Float64,
                                    "rows": pl.Int32, "agreed_rows": pl.Int32, "agree": pl.Boolean,
                                    "error": pl.String})
    frame = pl.concat(frames, how="diagonal_relaxed")
    cutoff = int(since * 1e6)
    return frame.filter((pl.col("shadow_arm") == arm) & (pl.col("ts").dt.epoch("us") >= cutoff)).sort("ts")


def summarize(frame: pl.DataFrame) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the candidate's figures, the champion's figures) over the compared requests."""
    import polars as pl

    n = frame.height
    compared = frame.filter(pl.col("agree").is_not_null())
    rows = int(compared["rows"].sum() or 0)
    agreed = int(compared["agreed_rows"].sum() or 0)
    errors = frame.filter(pl.col("error").is_not_null() | (pl.col("shadow_status") >= 500)).height

    def q(col: str, p: float) -> float | None:
        values = frame[col].drop_nulls()
        return float(values.quantile(p, "linear")) if len(values) else None  # type: ignore[arg-type]

    cand: dict[str, Any] = {"requests": n, "agreement": agreed / rows if rows else None,
            "request_agreement": float(compared["agree"].sum()) / compared.height if compared.height else None,
            "error_rate": errors / n if n else None, "p50_latency_ms": q("shadow_latency_ms", 0.5),
            "p95_latency_ms": q("shadow_latency_ms", 0.95), "p99_latency_ms": q("shadow_latency_ms", 0.99)}
    primary_errors = frame.filter(pl.col("primary_status") >= 500).height
    champ: dict[str, Any] = {"requests": n, "agreement": 1.0, "request_agreement": 1.0,
             "error_rate": primary_errors / n if n else None, "p50_latency_ms": q("primary_latency_ms", 0.5),
             "p95_latency_ms": q("primary_latency_ms", 0.95), "p99_latency_ms": q("primary_latency_ms", 0.99)}
    return cand, champ


def _deployment_arm(version: int) -> str:
    """The arm name a deployment gives a version it shadows (the deploy capability's rule, where present)."""
    import importlib

    try:
        arm_name = getattr(importlib.import_module("mlops_desktop.deploy.names"), "arm_name", None)
    except ImportError:
        arm_name = None
    return str(arm_name(version)) if arm_name is not None else f"v{version}"


@dataclass
class ShadowCheck:
    kind: ClassVar[str] = "shadow"
    name: str
    router: str | None
    log_dir: str | None
    router_url: str | None
    arm: str
    requests: int | None
    minutes: float | None
    rules: tuple[Rule, ...]
    samples: int
    prediction_logs: tuple[str, ...]
    deployment: str | None
    percent: float | None

    @classmethod
    def from_config(cls, raw: dict[str, Any], where: str) -> ShadowCheck:
        keys = Keys(raw, where, {"router", "log_dir", "router_url", "arm", "requests", "minutes", "require",
                                 "samples", "prediction_logs", "deployment", "percent"})
        router, log_dir, router_url = keys.text("router"), keys.text("log_dir"), keys.text("router_url")
        if router_url is not None and not router_url.startswith(("http://", "https://")):
            raise UsageError(f"{where}.router_url = {router_url!r} must start with http:// or https://")
        from mlops_desktop.serving.router_manager import NAME_RE

        if router is not None and not NAME_RE.match(router):
            raise UsageError(f"{where}.router = {router!r} is not a managed router's name",
                             hint="letters, digits, '.', '_' and '-' (see `mlops-desktop router list`)")
        deployment = keys.text("deployment")
        if not router and not log_dir and not deployment and not router_url:
            raise UsageError(f"{where}: name the managed router (router = \"NAME\"), its comparison folder "
                             "(log_dir = \"PATH\"), a router's address (router_url = \"http://...\") or a "
                             "deployment with shadow (deployment = \"NAME\")")
        requests, minutes = keys.integer("requests", minimum=1), keys.number("minutes", minimum=0)
        if requests is None and minutes is None:
            raise UsageError(f"{where}: say how much shadow traffic to wait for: requests = N and/or minutes = T")
        rules = parse_rules(raw.get("require", list(DEFAULT_RULES)), f"{where}.require", METRICS)
        return cls(name=keys.text("name", "shadow") or "shadow", router=router, log_dir=log_dir,
                   router_url=router_url,
                   arm=keys.text("arm", required=not deployment) or "", requests=requests, minutes=minutes,
                   rules=rules, samples=keys.integer("samples", 200, minimum=0) or 0,
                   prediction_logs=keys.strings("prediction_logs"), deployment=deployment,
                   percent=keys.number("percent", None, minimum=0))

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "arm": self.arm,
                               "require": [r.text for r in self.rules], "samples": self.samples}
        for key in ("router", "log_dir", "router_url", "requests", "minutes", "deployment", "percent"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.prediction_logs:
            out["prediction_logs"] = list(self.prediction_logs)
        return out

    def _start_deployment_shadow(self, ctx: CheckContext) -> CheckResult | None:
        """With `deployment =`, ask the deploy service to mirror traffic to the candidate (once per request)."""
        if not self.deployment or ctx.previous.get("shadow_started"):
            return None
        import importlib

        service_cls = getattr(importlib.import_module("mlops_desktop.deploy"), "DeploymentService", None)
        if service_cls is None or not hasattr(service_cls, "shadow"):
            return CheckResult(False, "shadow deployments are not available in this build",
                               {"available": False, "deployment": self.deployment})
        service_cls(ctx.ws).shadow(self.deployment, ctx.candidate.ref, self.percent or 10.0,
                                    reason=f"promotion {ctx.request_id}: shadow evidence")
        return None

    def run(self, ctx: CheckContext) -> CheckResult:
        failed = self._start_deployment_shadow(ctx)
        if failed is not None:
            return failed
        if self.log_dir:
            folder = Path(self.log_dir)
        elif self.router:
            folder = comparison_folder(ctx.ws, self.router)
        else:
            url = self.router_url or self._deployment_router(ctx)
            if url is None:
                return CheckResult(False, f"deployment {self.deployment} has no router to read the shadow log from",
                                   {"shadow_started": True})
            folder = ctx.workdir.parent / f"comparisons-{self.name}"  # kept: only new segments are fetched
            fetch_segments(url, folder)
        arm = self.arm or _deployment_arm(ctx.candidate.version)
        frame = read_comparisons(folder, arm, ctx.started_at)
        elapsed = time.time() - ctx.started_at
        n = frame.height
        evidence: dict[str, Any] = {"source": str(folder), "arm": arm, "since": ctx.started_at,
                                    "requests": n, "elapsed_s": round(elapsed, 1), "shadow_started": True,
                                    "wanted": {"requests": self.requests, "minutes": self.minutes}}
        enough = (self.requests is not None and n >= self.requests) or \
                 (self.minutes is not None and elapsed >= self.minutes * 60)
        if not enough:
            want = [f"{self.requests:,} requests" if self.requests else "", f"{self.minutes:g} min" if self.minutes
                    else ""]
            return CheckResult(False, f"waiting for shadow traffic: {n:,} request(s) compared so far, "
                               f"{elapsed / 60:.1f} min elapsed (wants {' or '.join(w for w in want if w)})",
                               evidence, waiting=True)
        if n == 0:
            return CheckResult(False, f"no shadow traffic reached arm {arm!r} in {elapsed / 60:.1f} min",
                               evidence)
        cand, champ = summarize(frame)
        results = evaluate_all(self.rules, cand, champ)
        disagreements = frame.filter(frame["agree"].not_()) if n else frame
        evidence |= {"candidate": cand, "champion": champ, "rules": [r.to_dict() for r in results],
                     "disagreed_requests": disagreements.height,
                     "errors": frame.filter(frame["error"].is_not_null())["error"].value_counts().head(10)
                     .to_dicts() if n else [],
                     "window": [frame["ts"].min().timestamp(), frame["ts"].max().timestamp()]}  # type: ignore
        evidence["samples"] = self._keep_samples(ctx, frame)
        evidence["drift"] = self._drift(ctx)
        failed_rules = [r for r in results if not r.passed]
        agree = cand.get("agreement")
        head = f"{n:,} requests, agreement {agree:.1%}" if agree is not None else f"{n:,} requests"
        if failed_rules:
            return CheckResult(False, f"{head}: " + "; ".join(f"{r.rule} failed ({r.detail})"
                                                            for r in failed_rules), evidence)
        p95 = cand.get("p95_latency_ms")
        return CheckResult(True, head + (f", p95 {p95:.1f} ms" if p95 is not None else "")
                           + f", errors {cand['error_rate'] or 0:.1%}", evidence)

    def _deployment_router(self, ctx: CheckContext) -> str | None:
        import importlib

        service_cls = getattr(importlib.import_module("mlops_desktop.deploy"), "DeploymentService", None)
        if service_cls is None or not self.deployment:
            return None
        urls = [e.url for e in service_cls(ctx.ws).endpoints(self.deployment) if e.role == "router"]
        return urls[0] if urls else None

    def _keep_samples(self, ctx: CheckContext, frame: pl.DataFrame) -> int:
        from mlops_desktop.promotion import samples

        if not self.samples:
            return 0
        rows = samples.prediction_rows(ctx.ws, ctx.candidate.name, set(frame["request_id"].to_list()),
                                       self.prediction_logs)
        kept = samples.join_samples(rows, ctx.candidate, frame, self.samples)
        samples.store(ctx.ws, ctx.request_id, kept)
        return len(kept)

    def _drift(self, ctx: CheckContext) -> dict[str, Any] | None:
        """Drift of the shadowed inputs against the candidate's training dataset (when the lake still has it)."""
        import polars as pl

        from mlops_desktop.data import catalog, lake
        from mlops_desktop.monitoring.drift import compute_drift
        from mlops_desktop.monitoring.sketch import build_sketch
        from mlops_desktop.promotion import samples

        training = [i for i in ctx.candidate.inputs if i.get("context") in ("training", "train", "input")]
        kept = samples.load(ctx.ws, ctx.request_id)
        if not training or not kept:
            return None
        try:
            version = catalog.resolve(ctx.ws.db, f"{training[0]['dataset']}@{training[0]['version']}")
            names = [c for c in ctx.candidate.signature.input_names if c in version.schema]
            sketch = build_sketch(lake.scan(ctx.ws, version), names, source=f"lake:{version.ref}")
            current = pl.DataFrame([s.inputs for s in kept], infer_schema_length=None)
            report = compute_drift(sketch, current, columns=[c for c in names if c in current.columns])
        except (MlopsError, pl.exceptions.PolarsError, ValueError, TypeError) as exc:
            return {"error": str(exc).splitlines()[0][:200]}
        return {"reference": version.ref, "dataset_drift": report.dataset_drift,
                "share_drifted": report.share_drifted, "drifted_features": report.drifted_features,
                "current_rows": report.current_rows,
                "features": [{"column": f.column, "method": f.method, "score": f.score, "drifted": f.drifted}
                             for f in report.features]}
