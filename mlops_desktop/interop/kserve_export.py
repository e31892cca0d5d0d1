"""`export kserve`: a model version as a KServe `InferenceService` (serving.kserve.io/v1beta1) manifest.

The predictor is a custom container: the version's image (built by `images build`, ideally pushed, so its digest
pins it), which runs our server. It speaks the Open Inference Protocol v2 that KServe's clients use, so the probes
are `/v2/health/ready` and `/v2/health/live` on port 8080. A canary percent (KServe's `canaryTrafficPercent`) comes
from `--canary-percent` or, when the deployment of the same name splits traffic, from the candidate arm's weight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_desktop.errors import NotFoundError, UsageError

API_VERSION = "serving.kserve.io/v1beta1"
PORT = 8080
# KServe's InferenceService names become Knative/Kubernetes Service names: a DNS-1035 label, and KServe prefixes
# and suffixes it ("-predictor-00001-deployment-..."), so keep it short
_NAME = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
NAME_MAX = 45
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*$", re.IGNORECASE)


@dataclass
class KServeExport:
    manifest: dict[str, Any]
    model: str
    version: int
    image: str
    output: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "image": self.image, "output": self.output,
                "name": self.manifest["metadata"]["name"], "notes": list(self.notes), "manifest": self.manifest}


def check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise UsageError("invalid InferenceService name: it is empty")
    if len(name) > NAME_MAX:
        raise UsageError(f"invalid InferenceService name {name!r}: {len(name)} characters (at most {NAME_MAX}: "
                         "KServe adds suffixes to it)")
    if not _NAME.fullmatch(name) or "--" in name:
        raise UsageError(f"invalid InferenceService name {name!r}",
                         hint="lowercase letters, digits and '-', starting with a letter and ending with a letter "
                              "or digit")
    return name


def _quantity(what: str, value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not _QUANTITY.fullmatch(text):
        raise UsageError(f"invalid {what} {value!r}: a Kubernetes quantity such as 500m, 2, 512Mi or 4Gi")
    return text


def find_image(ws: Any, model: str, version: int) -> tuple[str, list[str]]:
    """The best image recorded for a version: a pushed digest first, else the newest local tag."""
    import importlib

    try:  # the containers capability records the images (`images build`, `images push`)
        images_mod: Any = importlib.import_module("mlops_desktop.containers.images")
    except ImportError:
        images_mod = None
    finder = getattr(images_mod, "images_for", None)
    records = list(finder(ws, model, version)) if callable(finder) else []
    pushed = [r for r in records if getattr(r, "digest", "")]
    if pushed:
        return str(pushed[-1].digest), []
    if records:
        tag = str(records[-1].tag)
        return tag, [f"the image {tag} was never pushed: a cluster can pull it only from a registry "
                     "(`mlops-desktop images push`)"]
    raise NotFoundError(f"no image of {model}/{version} is recorded",
                        hint=f"build one with `mlops-desktop images build {model}/{version}` (and push it), "
                             "or pass --image")


def build_inference_service(ws: Any, ref: str, *, image: str | None = None, name: str | None = None,
                            namespace: str | None = None, canary_percent: int | None = None,
                            min_replicas: int = 1, max_replicas: int | None = None, cpu: str | None = None,
                            memory: str | None = None, gpus: int = 0, pull_secret: str | None = None,
                            env: dict[str, str] | None = None) -> KServeExport:
    """The manifest of `ref` (MODEL@ALIAS or MODEL/VERSION). Nothing is applied anywhere."""
    from mlops_desktop import registry

    mv = registry.resolve(ws, ref)
    notes: list[str] = []
    if image is None:
        image, notes = find_image(ws, mv.name, mv.version)
    elif not _IMAGE.fullmatch(image):
        raise UsageError(f"invalid image reference {image!r}")
    isvc_name = check_name(name or mv.name)
    if namespace is not None:
        check_name(namespace)
    if canary_percent is not None and not 0 <= canary_percent <= 100:
        raise UsageError(f"invalid --canary-percent {canary_percent}: 0 to 100")
    if min_replicas < 0 or (max_replicas is not None and max_replicas < max(min_replicas, 1)):
        raise UsageError(f"invalid replicas: min {min_replicas}, max {max_replicas} (0 <= min <= max, max >= 1)")
    if gpus < 0:
        raise UsageError(f"invalid --gpus {gpus}")
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if (q := _quantity("--cpu", cpu)) is not None:
        requests["cpu"] = limits["cpu"] = q
    if (q := _quantity("--memory", memory)) is not None:
        requests["memory"] = limits["memory"] = q
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    probe = {"httpGet": {"path": "/v2/health/ready", "port": PORT}, "periodSeconds": 2, "failureThreshold": 3}
    container: dict[str, Any] = {
        "name": "kserve-container",
        "image": image,
        "ports": [{"containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": PORT}, "periodSeconds": 10,
                          "failureThreshold": 3},
    }
    if env:
        container["env"] = [{"name": k, "value": str(v)} for k, v in sorted(env.items())]
    if requests or limits:
        container["resources"] = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    predictor: dict[str, Any] = {"minReplicas": min_replicas, "containers": [container]}
    if max_replicas is not None:
        predictor["maxReplicas"] = max_replicas
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = canary_percent
    if pull_secret:
        predictor["imagePullSecrets"] = [{"name": check_name(pull_secret)}]
    metadata: dict[str, Any] = {
        "name": isvc_name,
        "labels": {"app.kubernetes.io/managed-by": "mlops-desktop", "mlops-desktop/model": mv.name,
                   "mlops-desktop/version": str(mv.version)},
        "annotations": {"mlops-desktop/bundle-hash": mv.bundle_hash, "mlops-desktop/ref": ref,
                        "mlops-desktop/protocol": "v2", "mlops-desktop/serving-path": mv.serving_path},
    }
    if namespace:
        metadata["namespace"] = namespace
    manifest = {"apiVersion": API_VERSION, "kind": "InferenceService", "metadata": metadata,
                "spec": {"predictor": predictor}}
    return KServeExport(manifest=manifest, model=mv.name, version=mv.version, image=image, notes=notes)


def export_kserve(ws: Any, ref: str, output: str | Path, **options: Any) -> KServeExport:
    import yaml

    result = build_inference_service(ws, ref, **options)
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.safe_dump(result.manifest, sort_keys=False), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    result.output = str(path)
    return result
