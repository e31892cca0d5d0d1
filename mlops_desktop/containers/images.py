"""Model images: build one for a model version (generated Dockerfile, cached layers), list and find them.

    build_image(ws, "churn@production", on_log=print, cancel=event) -> ImageRecord
    build_router_image(ws) -> ImageRecord                       (the server code without a model: the A/B router)
    images_for(ws, "churn", 3) -> [ImageRecord];  get_image(ws, tag | digest | image id) -> ImageRecord
Pushing and smoke tests: containers.push.push_image, containers.smoke.smoke_test (re-exported by the package).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from mlops_desktop.containers import deps as deps_mod
from mlops_desktop.containers import dockerfile, records
from mlops_desktop.containers.build import BuildCancelled, BuildFailed, LogFn, run_build
from mlops_desktop.containers.context import BuildContext, add_app, add_wheel_files, is_shared_library, stripped
from mlops_desktop.containers.engine import EngineError, api_error, connect, engine_address, short_reason
from mlops_desktop.containers.names import ImageName, image_name_for, parse_image_name
from mlops_desktop.containers.records import ImageRecord
from mlops_desktop.errors import UsageError

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace

DEFAULT_BASE = "mlops-desktop/python-base:bookworm"
DEFAULT_DEPS_REPOSITORY = "mlops-desktop/python-deps"
ROUTER_REPOSITORY = "mlops-desktop/router"
L = dockerfile.LABEL_PREFIX
# FROM accepts a tag or a digest; nothing else may reach the Dockerfile (no newlines, no options)
_BASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,254}(@sha256:[0-9a-f]{64})?$")
_PROBE = ("import json, os, platform, shutil, sys; print(json.dumps({'version': platform.python_version(), "
          "'implementation': platform.python_implementation(), 'platform': sys.platform, "
          "'machine': platform.machine(), 'tini': shutil.which('tini') or ''}))")


def check_base(base: str) -> str:
    text = base.strip() if isinstance(base, str) else ""
    if not _BASE_RE.match(text):
        raise UsageError(f"invalid base image {base!r}: expected REPOSITORY[:TAG] or REPOSITORY@sha256:DIGEST")
    return text


def build_image(ws: Workspace, ref: str, *, base: str | None = None, docker_host: str | None = None,
                tag: str | None = None, on_log: LogFn | None = None, cancel: threading.Event | None = None,
                labels: dict[str, str] | None = None, prediction_log: bool = True, fast_path: bool = False,
                deps_repository: str = DEFAULT_DEPS_REPOSITORY, bytecode: bool = True) -> ImageRecord:
    """Build the image of `ref` (MODEL@ALIAS | MODEL/VERSION | MODEL), tag it and record it.

    `prediction_log`: the image's server keeps a prediction log (column-lines segments, no pyarrow in the image;
    off: no log at all); `fast_path`: serve a verified
    ONNX fast path (adds onnxruntime) instead of the flavor's own code. A cancelled build raises BuildCancelled, a
    failed one BuildFailed; neither leaves a tag.
    """
    from mlops_desktop import registry

    mv = registry.resolve(ws, ref)
    bundle = registry.open_version_bundle(ws, mv)  # verified against the registry's hash before it is copied
    name = parse_image_name(tag, what="tag") if tag else image_name_for(mv.name, mv.version, mv.bundle_hash)
    base = check_base(base or DEFAULT_BASE)
    log = _Logger(on_log)
    cancel = cancel or threading.Event()
    wanted = deps_mod.wanted_for(bundle.flavor)
    if fast_path and bundle.fast_path.get("status") == "verified":
        wanted += ("onnxruntime",)
    started = time.monotonic()
    log(f"model {mv.ref} (bundle {mv.bundle_hash[:12]}, flavor {bundle.flavor}) -> {name}")
    client = connect(docker_host)
    where = engine_address(docker_host)
    try:
        base_id = _ensure_base(client, base, where, log)
        deps_image, target, deps = _ensure_deps(ws, client, base, base_id, deps_mod.bundle_pins(bundle.environment),
                                                wanted, deps_repository, where, log, cancel, bytecode)
        command = dockerfile.ServeCommand(mv.bundle_hash, mv.name, mv.version, prediction_log=prediction_log,
                                          fast_path=fast_path).argv()
        image_labels = {f"{L}.kind": "model", f"{L}.model": mv.name, f"{L}.version": str(mv.version),
                        f"{L}.bundle-hash": mv.bundle_hash, f"{L}.flavor": bundle.flavor,
                        f"{L}.deps": deps.key, f"{L}.python": target.version, **(labels or {})}
        ctx = BuildContext()
        try:
            ctx.add_bytes("Dockerfile", dockerfile.model_dockerfile(deps_image, command, image_labels,
                                                                    tini=target.tini).encode())
            add_app(ctx)
            ctx.add_dir("state")
            ctx.add_bytes("model/bundle.json", (bundle.path / "bundle.json").read_bytes(), 0o444)
            for rel in sorted(bundle.files):
                ctx.add_file(f"model/{rel}", bundle.path / rel)
            log(f"build context: {ctx.size / 1e6:.1f} MB (server code + model)")
            outcome = run_build(client, ctx.fileobj(), tag=str(name), on_log=log, cancel=cancel, where=where)
        finally:
            ctx.close()
        size = _image_size(client, outcome.image_id)
        seconds = time.monotonic() - started
        log(f"built {name} ({outcome.image_id[7:19]}): {size / 1e6:.0f} MB in {seconds:.1f} s, "
            f"{outcome.cached_steps}/{outcome.steps} steps from the cache")
        return records.save_build(
            ws.db, version_id=mv.id or None, model=mv.name, version=mv.version, bundle_hash=mv.bundle_hash,
            kind="model", tag=str(name), engine=where, image_id=outcome.image_id, base=base, base_id=base_id,
            deps_key=deps.key, size_bytes=size, build_seconds=seconds, steps=outcome.steps,
            cached_steps=outcome.cached_steps,
            options={"prediction_log": prediction_log, "fast_path": fast_path, "python": target.version,
                     "deps_image": deps_image, "tini": bool(target.tini), "packages": deps.pins})
    finally:
        client.close()


def build_router_image(ws: Workspace, *, base: str | None = None, docker_host: str | None = None,
                       tag: str | None = None, on_log: LogFn | None = None,
                       cancel: threading.Event | None = None, labels: dict[str, str] | None = None,
                       deps_repository: str = DEFAULT_DEPS_REPOSITORY) -> ImageRecord:
    """The server code without a model; its command is the A/B router ($MLOPS_ROUTER_CONFIG). Model images run
    the router too (same code): this one is only smaller."""
    import mlops_desktop

    name = parse_image_name(tag, what="tag") if tag else parse_image_name(
        f"{ROUTER_REPOSITORY}:{mlops_desktop.__version__}")
    base = check_base(base or DEFAULT_BASE)
    log = _Logger(on_log)
    cancel = cancel or threading.Event()
    started = time.monotonic()
    client = connect(docker_host)
    where = engine_address(docker_host)
    try:
        base_id = _ensure_base(client, base, where, log)
        deps_image, target, deps = _ensure_deps(ws, client, base, base_id, {},
                                                deps_mod.SERVER_DISTRIBUTIONS,
                                                deps_repository, where, log, cancel)
        image_labels = {f"{L}.kind": "router", f"{L}.deps": deps.key, f"{L}.python": target.version,
                        **(labels or {})}
        ctx = BuildContext()
        try:
            ctx.add_bytes("Dockerfile", dockerfile.model_dockerfile(deps_image, dockerfile.router_argv(),
                                                                    image_labels, tini=target.tini,
                                                                    with_model=False).encode())
            add_app(ctx)
            ctx.add_dir("state")
            outcome = run_build(client, ctx.fileobj(), tag=str(name), on_log=log, cancel=cancel, where=where)
        finally:
            ctx.close()
        size = _image_size(client, outcome.image_id)
        return records.save_build(
            ws.db, version_id=None, model="router", version=None, bundle_hash="", kind="router", tag=str(name),
            engine=where, image_id=outcome.image_id, base=base, base_id=base_id, deps_key=deps.key, size_bytes=size,
            build_seconds=time.monotonic() - started, steps=outcome.steps, cached_steps=outcome.cached_steps,
            options={"python": target.version, "deps_image": deps_image, "packages": deps.pins})
    finally:
        client.close()


def images_for(ws: Workspace, model: str, version: int | None = None) -> list[ImageRecord]:
    return records.list_images(ws.db, model=model, version=version)


def list_images(ws: Workspace, model: str | None = None) -> list[ImageRecord]:
    return records.list_images(ws.db, model=model)


def get_image(ws: Workspace, tag_or_digest: str | ImageRecord) -> ImageRecord:
    if isinstance(tag_or_digest, ImageRecord):
        return tag_or_digest
    return records.find_image(ws.db, tag_or_digest)


# ------------------------------------------------------------------------------------------------- internals
class _Logger:
    def __init__(self, on_log: LogFn | None) -> None:
        self.on_log = on_log
        self._mark: str | None = None  # the package image's import-check verdict, when it failed

    def __call__(self, line: str) -> None:
        if line.startswith(dockerfile.IMPORT_FAILED_MARK):
            self._mark = line[len(dockerfile.IMPORT_FAILED_MARK):]
        if self.on_log is not None:
            self.on_log(line)

    def take_mark(self) -> list[str] | None:
        mark, self._mark = self._mark, None
        if mark is None:
            return None
        try:
            return [str(x) for x in json.loads(mark)]
        except ValueError:
            return [mark]


def _ensure_base(client: Any, base: str, where: str, log: LogFn) -> str:
    """The base image's id; pulled when it is not on the engine (a registry the engine can reach)."""
    from docker.errors import APIError, ImageNotFound

    try:
        return str(client.images.get(base).id)
    except ImageNotFound:
        pass
    except APIError as exc:
        raise api_error(f"looking up the base image {base}", exc, where) from None
    log(f"base image {base} is not on the engine: pulling it")
    try:
        return str(client.images.pull(base).id)
    except Exception as exc:
        raise BuildFailed(f"the base image {base} is not on the Docker engine at {where} and cannot be pulled "
                          f"({short_reason(exc)})",
                          hint="build the default base with `bash scripts/infra/base-image.sh "
                               f"{DEFAULT_BASE}`, or pass --base with an image the engine has") from None


def _probe(client: Any, base: str, where: str) -> deps_mod.TargetPython:
    """Run the base image's python3 once to learn its version, platform and whether it has tini."""
    try:
        out = client.containers.run(base, ["python3", "-c", _PROBE], entrypoint=[], remove=True,
                                    network_disabled=True, stdout=True, stderr=True)
        doc = json.loads(out.decode().strip().splitlines()[-1])
    except Exception as exc:
        raise BuildFailed(f"the base image {base} has no working python3 ({short_reason(exc)})",
                          hint="a model image needs a base with Python 3 (e.g. Debian with python3)") from None
    return deps_mod.TargetPython(version=doc["version"], implementation=doc["implementation"],
                                 platform=doc["platform"], machine=doc["machine"], tini=doc["tini"])


def _ensure_deps(ws: Workspace, client: Any, base: str, base_id: str, pins: dict[str, str], wanted: tuple[str, ...],
                 repository: str, where: str, log: _Logger, cancel: threading.Event,
                 bytecode: bool = True) -> tuple[str, deps_mod.TargetPython, deps_mod.DependencySet]:
    """The package image for these pins on this base: found by its tag (a hash of both), else built."""
    import hashlib
    import platform

    from docker.errors import ImageNotFound

    here = deps_mod.TargetPython(platform.python_version())
    fetch = deps_mod.pip_fetcher(ws.paths.containers / "wheels", here, on_log=log)
    deps = deps_mod.resolve(pins, wanted, here, fetch=fetch)
    key = hashlib.sha256(f"{base_id}\0{deps.key}\0{int(bytecode)}".encode()).hexdigest()[:20]
    image = str(ImageName("", parse_image_name(f"{repository}:x").path, key))
    try:
        found = client.images.get(image)
        meta = found.labels or {}
        target = deps_mod.TargetPython(version=meta.get(f"{L}.python", here.version),
                                       tini=meta.get(f"{L}.tini", ""))
        log(f"packages: {len(deps.pins)} distributions from the cached image {image}")
        return image, target, deps
    except ImageNotFound:
        pass
    target = _probe(client, base, where)
    deps_mod.check_target(target)
    if cancel.is_set():
        raise BuildCancelled("the build was cancelled; nothing was tagged")
    log(f"packages: {len(deps.pins)} distributions, {deps.size_bytes / 1e6:.0f} MB as installed here "
        f"(python {here.version} -> base python {target.version}); building the package image {image}")
    cache = ws.paths.containers / "stripped"
    labels = {f"{L}.kind": "deps", f"{L}.deps": deps.key, f"{L}.python": target.version, f"{L}.tini": target.tini,
              f"{L}.base": base}
    modules = deps_mod.warm_modules(deps, wanted)
    for strip in (True, False):
        ctx = BuildContext()
        try:
            ctx.add_bytes("Dockerfile", dockerfile.deps_dockerfile(base, labels).encode())
            ctx.add_bytes("requirements.txt", deps.requirements().encode())
            ctx.add_bytes("warm.py", dockerfile.warm_script(modules, bytecode=bytecode).encode())
            for source, rel in deps.files:
                if cancel.is_set():
                    raise BuildCancelled("the build was cancelled; nothing was tagged")
                use = stripped(source, rel, cache) if strip and is_shared_library(rel) else source
                ctx.add_file(f"site-packages/{rel}", use)
            add_wheel_files(ctx, deps.wheel_files, prefix="site-packages")
            log(f"package context: {ctx.size / 1e6:.0f} MB" + (" (libraries stripped of debug symbols)" if strip
                                                                 else ""))
            run_build(client, ctx.fileobj(), tag=image, on_log=log, cancel=cancel, where=where, network="none")
        except BuildFailed:
            failed = log.take_mark()
            if failed is None:
                raise
            if strip:
                log(f"some packages do not import with stripped libraries ({failed[0]}); building again unstripped")
                continue
            raise BuildFailed(f"the packages do not import in the base image {base} (python {target.version}): "
                              + "; ".join(failed[:5]),
                              hint="choose a base image with the same Python and C library as this machine") from None
        finally:
            ctx.close()
        return image, target, deps
    raise AssertionError("unreachable")


def _image_size(client: Any, image_id: str) -> int:
    with contextlib.suppress(Exception):
        return int(client.api.inspect_image(image_id).get("Size") or 0)
    return 0


__all__ = ["DEFAULT_BASE", "BuildCancelled", "BuildFailed", "EngineError", "ImageRecord", "build_image",
           "build_router_image", "get_image", "images_for", "list_images"]
