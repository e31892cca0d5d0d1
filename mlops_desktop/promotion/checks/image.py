"""Image smoke test and latency budget: the candidate's container image (the one the policy names, else the newest
built from the candidate's version) is started and asked to predict (`containers.smoke_test`); its p99 answer time
must stay within the budget. Without the containers capability in this build the check fails, saying so."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mlops_desktop.errors import MlopsError
from mlops_desktop.promotion.checks.base import CheckContext, CheckResult, Keys, unavailable


def smoke_test_fn() -> Any:
    """`containers.smoke_test`, or None in a build without the containers capability."""
    import importlib

    try:
        containers = importlib.import_module("mlops_desktop.containers")
    except ImportError:
        return None
    return getattr(containers, "smoke_test", None)


def _image_for(ctx: CheckContext, image: str | None) -> Any:
    """The image named in the policy, else the newest model image built from the candidate's version."""
    from mlops_desktop import containers

    if image:
        return containers.get_image(ctx.ws, image)
    cand = ctx.candidate
    built = [r for r in containers.images_for(ctx.ws, cand.name, cand.version) if r.kind == "model"]
    return built[0] if built else None


@dataclass
class ImageCheck:
    kind: ClassVar[str] = "image"
    name: str
    image: str | None
    latency_budget_ms: float | None
    docker_host: str | None = None  # the engine to run it on; default: Docker's own (DOCKER_HOST, the socket)

    @classmethod
    def from_config(cls, raw: dict[str, Any], where: str) -> ImageCheck:
        keys = Keys(raw, where, {"image", "latency_budget_ms", "docker_host"})
        return cls(name=keys.text("name", "image") or "image", image=keys.text("image"),
                   latency_budget_ms=keys.number("latency_budget_ms", minimum=0),
                   docker_host=keys.text("docker_host"))

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.image:
            out["image"] = self.image
        if self.latency_budget_ms is not None:
            out["latency_budget_ms"] = self.latency_budget_ms
        if self.docker_host:
            out["docker_host"] = self.docker_host
        return out

    def run(self, ctx: CheckContext) -> CheckResult:
        smoke = smoke_test_fn()
        if smoke is None:
            return unavailable(self.kind, "the image smoke test")
        ref = ctx.candidate.ref
        try:
            record = _image_for(ctx, self.image)
            if record is None:
                return CheckResult(False, f"{ref} has no container image to smoke-test: build one with "
                                   f"`mlops-desktop images build {ref}`", {"image": None})
            result = smoke(ctx.ws, record, ref, docker_host=self.docker_host)
        except MlopsError as exc:
            return CheckResult(False, f"the smoke test of {self.image or ref} could not run: {exc.message}",
                               {"image": self.image})
        latency = result.p99_ms  # single-row round trips through the container's server
        evidence = {"image": record.tag, "image_id": record.image_id, "digest": record.digest or None,
                    "passed": result.passed, "latency_ms": latency, "p50_ms": result.p50_ms,
                    "budget_ms": self.latency_budget_ms, "detail": result.error or result.first_mismatch,
                    "result": result.to_dict()}
        if not result.passed:
            why = result.error or (f"{result.mismatches} of {result.rows} predictions differ from the model's "
                                   f"({result.first_mismatch})" if result.mismatches else "no answer")
            return CheckResult(False, f"{record.tag} failed its smoke test: {why}", evidence)
        if self.latency_budget_ms is not None:
            if latency is None:
                return CheckResult(False, "the smoke test measured no latency to hold against the budget", evidence)
            if latency > self.latency_budget_ms:
                return CheckResult(False, f"{record.tag} answered in {latency:.1f} ms (p99), over the budget of "
                                   f"{self.latency_budget_ms:g} ms", evidence)
        shown = f" in {latency:.1f} ms (p99)" if latency is not None else ""
        return CheckResult(True, f"{record.tag} passed its smoke test on {result.rows} rows{shown}", evidence)
