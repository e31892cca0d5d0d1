"""Where a deployment's image comes from: built and pushed by the containers capability, or given by the user.

The service asks an `ImageSource` for the image of a model version on a target; it never builds anything itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from mlops_desktop.errors import UsageError

if TYPE_CHECKING:
    from mlops_desktop.deploy.backend import ProgressFn
    from mlops_desktop.deploy.models import Target
    from mlops_desktop.registry.entities import ModelVersion
    from mlops_desktop.workspace import Workspace


class ImageSource(Protocol):
    def image_for(self, version: ModelVersion, target: Target, progress: ProgressFn | None = None) -> str:
        """An image reference the target's engine can pull (or has) that serves `version` on its port."""
        ...


class GivenImages:
    """Images the caller names: `deploy create --image REF`, or a prebuilt image per version (model, version);
    `router`: the image the A/B router runs from (default: the stable arm's, which has the same code)."""

    def __init__(self, images: dict[tuple[str, int], str] | None = None, default: str | None = None,
                 router: str | None = None) -> None:
        self.images = dict(images or {})
        self.default = default
        self.router = router

    def router_image(self, target: Target, progress: ProgressFn | None = None) -> str | None:
        return self.router

    def image_for(self, version: ModelVersion, target: Target, progress: ProgressFn | None = None) -> str:
        image = self.images.get((version.name, int(version.version)), self.default)
        if not image:
            raise UsageError(f"no image given for {version.name}/{version.version}",
                             hint="build one with `images build` or pass --image")
        return image


class ContainersImages:
    """The containers capability's image of the version (`mlops_desktop.containers`): an image already built for it
    on the target's engine is reused, else it is built (build log to the progress line); with the target option
    "registry" it is pushed there and deployed by digest (Swarm nodes and Kubernetes pull it)."""

    def __init__(self, ws: Workspace, *, router_from_model: bool = False, **build_options: Any) -> None:
        """`build_options` go to containers.build_image (base, deps_repository, labels, ...);
        `router_from_model`: run the router from the stable arm's model image (same code) instead of building the
        smaller router image."""
        self.ws = ws
        self.router_from_model = router_from_model
        self.build_options = build_options

    def image_for(self, version: ModelVersion, target: Target, progress: ProgressFn | None = None) -> str:
        import importlib

        try:
            containers: Any = importlib.import_module("mlops_desktop.containers")
        except ImportError:
            containers = None
        build = getattr(containers, "build_image", None)
        if build is None:
            raise UsageError("this build cannot build model images yet", hint="pass a prebuilt image with --image")
        docker_host = target.address if target.kind in ("local", "swarm") else None
        registry = target.option("registry")
        record = self._existing(containers, version, registry)
        if record is None:
            def log(line: str) -> None:
                if progress is not None:
                    progress(0.5, line[:200])

            record = build(self.ws, f"{version.name}/{version.version}", docker_host=docker_host, on_log=log,
                           **self.build_options)
        if registry:
            if not record.digest or record.pushed_to != registry:
                record = containers.push_image(self.ws, record, registry, docker_host=docker_host)
            return str(record.digest)
        return str(record.tag)

    def router_image(self, target: Target, progress: ProgressFn | None = None) -> str | None:
        """The router image (server code without a model), built once per engine; None: use the arm's image."""
        import importlib

        if self.router_from_model:
            return None
        try:
            containers: Any = importlib.import_module("mlops_desktop.containers")
        except ImportError:
            return None
        build = getattr(containers, "build_router_image", None)
        if build is None:
            return None
        docker_host = target.address if target.kind in ("local", "swarm") else None
        registry = target.option("registry")
        records = [r for r in containers.list_images(self.ws, "router") if r.kind == "router"
                   and (not registry or r.pushed_to == registry)]
        options = {k: v for k, v in self.build_options.items() if k in ("base", "labels", "deps_repository")}
        record = records[-1] if records else build(self.ws, docker_host=docker_host, **options)
        if registry:
            if not record.digest or record.pushed_to != registry:
                record = containers.push_image(self.ws, record, registry, docker_host=docker_host)
            return str(record.digest)
        return str(record.tag)

    def _existing(self, containers: Any, version: ModelVersion, registry: str | None) -> Any:
        images_for = getattr(containers, "images_for", None)
        if images_for is None:
            return None
        records = [r for r in images_for(self.ws, version.name, int(version.version))
                   if r.bundle_hash == version.bundle_hash and (not registry or r.pushed_to == registry)]
        return records[-1] if records else None
