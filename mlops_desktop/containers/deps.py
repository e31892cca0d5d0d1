"""The Python packages inside a model image: the bundle's pinned packages, the server's own, and their dependency
closure, taken from this machine's installed distributions (no package index needed at build time).

The image's Python must be ABI-compatible with this one (same major.minor, CPython, Linux): the files are copied
as installed, exactly the versions the bundle recorded. A pinned version this machine does not have, or another
Python in the base image, is refused in words (install that version here, or choose a matching base).
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from mlops_desktop.errors import UsageError

# What `python -m mlops_desktop.serving` and the router import (uvicorn with its C parser and loop, orjson for
# the payloads and the prediction log's segments, the Prometheus text format, numpy). No pyarrow: without it the
# log writes column-lines segments (serving/segfmt.py), which the desktop turns into Parquet when it pulls them;
# that keeps ~90 MB out of every image.
SERVER_DISTRIBUTIONS = ("uvicorn", "httptools", "uvloop", "orjson", "prometheus_client", "numpy")
# What each flavor's predictor imports beyond the bundle's own packages
FLAVOR_DISTRIBUTIONS = {"sklearn": ("scikit-learn", "pandas", "skops"), "pytorch": ("torch",),
                        "onnx": ("onnxruntime",), "python": ()}
# Never needed to serve: test suites, headers, Cython sources, and pyarrow's Flight RPC (its own library)
_SKIP_PARTS = {"tests", "test", "__pycache__", "include"}
_SKIP_SUFFIXES = (".pyc", ".pyx", ".pxd", ".pxi", ".h", ".hpp", ".c", ".cc", ".cpp")
_SKIP_NAMES = re.compile(r"(^libarrow_flight|^_flight\.|^libarrow_substrait.*\.a$|\.a$)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class TargetPython:
    """The interpreter of the base image, as probed (version, implementation, platform, tini)."""

    version: str  # "3.11.2"
    implementation: str = "CPython"
    platform: str = "linux"
    machine: str = "x86_64"
    tini: str = ""  # path of tini in the image, "" when it has none

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


@dataclass
class DependencySet:
    """The distributions to copy into the image, with the files of each (site-packages relative paths)."""

    pins: dict[str, str]                         # canonical name -> version (everything in the image)
    files: list[tuple[str, str]] = field(default_factory=list)  # (absolute source path, site-packages path)
    wheel_files: list[tuple[str, str, str]] = field(default_factory=list)  # (wheel, member, site-packages path)
    size_bytes: int = 0

    @property
    def key(self) -> str:
        """Identifies the dependency layer: same pins + same python -> same layer (a cached image)."""
        doc = json.dumps(sorted(self.pins.items()), separators=(",", ":"))
        return hashlib.sha256(doc.encode()).hexdigest()[:16]

    def requirements(self) -> str:
        return "".join(f"{name}=={version}\n" for name, version in sorted(self.pins.items()))


def check_target(target: TargetPython) -> None:
    """The base image's Python must run the files installed here."""
    here = ".".join(platform.python_version_tuple()[:2])
    if target.implementation != platform.python_implementation() or target.minor != here:
        raise UsageError(f"the base image has {target.implementation} {target.version}, this machine "
                         f"{platform.python_implementation()} {platform.python_version()}: the model's packages "
                         "are copied as installed here, so both must be the same Python minor version",
                         hint=f"choose a base image with Python {here} (--base), e.g. the default Debian base")
    if target.platform != sys.platform or target.machine != platform.machine():
        raise UsageError(f"the base image is {target.platform}/{target.machine}, this machine "
                         f"{sys.platform}/{platform.machine()}: compiled packages would not load there")


def _marker_env(target: TargetPython) -> dict[str, str]:
    return {"python_version": target.minor, "python_full_version": target.version, "sys_platform": target.platform,
            "platform_system": "Linux" if target.platform == "linux" else target.platform,
            "platform_machine": target.machine, "implementation_name": target.implementation.lower(),
            "platform_python_implementation": target.implementation, "os_name": "posix", "extra": ""}


Fetch = Callable[[str, str], Path]  # (name, version) -> a wheel file for the image's platform


def resolve(pinned: dict[str, str], wanted: tuple[str, ...], target: TargetPython, *,
            fetch: Fetch | None = None) -> DependencySet:
    """The closure of `pinned` (exact versions the model needs) and `wanted` (any installed version) through the
    distributions' requirements. A pinned version this machine does not have comes from `fetch` (a wheel, e.g.
    `pip download`) when given; without it, it is refused in words."""
    from packaging.requirements import InvalidRequirement, Requirement

    env = _marker_env(target)
    pins: dict[str, str] = {}
    wheels: dict[str, Path] = {}
    # pinned first (breadth first), so that the model's versions win over whatever a dependency would bring
    todo: list[tuple[str, str | None, str]] = [(n, v, "the model's environment") for n, v in pinned.items()]
    todo += [(n, None, "the model server") for n in wanted]
    mismatched: list[str] = []
    while todo:
        name, version, why = todo.pop(0)
        key = canonical(name)
        if key in pins:
            if version is not None and pins[key] != version:
                mismatched.append(f"{name}=={version} (needed by {why}; {pins[key]} is installed)")
            continue
        try:
            dist: Any = metadata.distribution(name)
            installed: str | None = dist.version
        except metadata.PackageNotFoundError:
            dist, installed = None, None
        if version is not None and installed != version and fetch is not None:
            wheels[key] = fetch(name, version)
            pins[key] = version
            requires, label = wheel_requires(wheels[key]), f"{name} {version}"
        elif dist is None or installed is None:
            raise UsageError(f"{name} is needed by {why} but is not installed in this Python ({sys.prefix})",
                             hint=f"pip install '{name}{'==' + version if version else ''}'")
        else:
            if version is not None and installed != version:
                mismatched.append(f"{name}=={version} (recorded by {why}; {installed} is installed here)")
            pins[key] = installed
            requires, label = list(dist.requires or []), f"{dist.metadata['Name']} {installed}"
        for raw in requires:
            try:
                req = Requirement(raw)
            except InvalidRequirement:
                continue
            if req.marker is not None and not req.marker.evaluate(env):
                continue  # extras and other platforms
            todo.append((req.name, None, label))
    if mismatched:
        raise UsageError("the image would not hold the versions the model was trained with: "
                         + "; ".join(sorted(mismatched)),
                         hint="install those versions in this Python (pip install NAME==VERSION), then build again")
    deps = DependencySet(pins)
    for key in sorted(pins):
        if key in wheels:
            _add_wheel(deps, wheels[key])
        else:
            _add_files(deps, metadata.distribution(key))
    return deps


def wheel_requires(wheel: Path) -> list[str]:
    """Requires-Dist of a wheel (its METADATA)."""
    import email.parser
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        meta = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1), None)
        if meta is None:
            raise UsageError(f"{wheel.name} is not a wheel (no .dist-info/METADATA)")
        message = email.parser.Parser().parsestr(zf.read(meta).decode("utf-8", errors="replace"))
    return [str(r) for r in message.get_all("Requires-Dist") or []]


def _add_wheel(deps: DependencySet, wheel: Path) -> None:
    """A wheel's files as site-packages paths (its .data/purelib and platlib folded in, scripts left out)."""
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            parts = info.filename.split("/")
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue
                parts = parts[2:]
            rel = PurePosixPath(*parts)
            if _SKIP_PARTS & set(rel.parts[:-1]) or rel.name.endswith(_SKIP_SUFFIXES) or _SKIP_NAMES.search(rel.name):
                continue
            deps.wheel_files.append((str(wheel), info.filename, str(rel)))
            deps.size_bytes += info.file_size


def pip_fetcher(cache: Path, target: TargetPython, *, on_log: Callable[[str], None] | None = None,
                timeout: float = 600.0) -> Fetch:
    """`pip download` of one exact version as a binary wheel for the image's Python and platform (this Python's
    pip and its configuration: index, proxy, certificates), cached in `cache`."""
    import subprocess

    def fetch(name: str, version: str) -> Path:
        stem = canonical(name).replace("-", "_")
        cache.mkdir(parents=True, exist_ok=True)
        for found in sorted(cache.glob("*.whl")):
            head = found.name.split("-")
            if len(head) > 2 and canonical(head[0]) == canonical(name) and head[1] == version:
                return found
        if on_log is not None:
            on_log(f"packages: {name}=={version} is not installed here; downloading its wheel (pip download)")
        py = target.minor
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", py, "--implementation", "cp", "--abi", f"cp{py.replace('.', '')}",
               "--platform", f"manylinux_2_28_{target.machine}", "--platform", f"manylinux2014_{target.machine}",
               "--platform", f"linux_{target.machine}", "-d", str(cache), f"{name}=={version}"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise UsageError(f"cannot download {name}=={version}: {exc}") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise UsageError(f"{name}=={version} (the version the model was trained with) is not installed here and "
                             f"pip could not download it: {last[:300]}",
                             hint=f"pip install '{name}=={version}' here, or make the package index reachable")
        for found in sorted(cache.glob("*.whl")):
            head = found.name.split("-")
            if len(head) > 2 and canonical(head[0]) == canonical(name) and head[1] == version:
                return found
        raise UsageError(f"pip downloaded no wheel of {name}=={version} ({stem})")

    return fetch


def _add_files(deps: DependencySet, dist: Any) -> None:
    root = PurePosixPath(str(dist.locate_file("")))
    for entry in dist.files or []:
        rel = PurePosixPath(str(entry))
        if ".." in rel.parts or rel.is_absolute():
            continue  # console scripts and data outside site-packages
        if _SKIP_PARTS & set(rel.parts[:-1]) or rel.name.endswith(_SKIP_SUFFIXES) or _SKIP_NAMES.search(rel.name):
            continue
        source = dist.locate_file(entry)
        try:
            size = source.stat().st_size
        except OSError:
            continue  # RECORD lists a file that is not there (e.g. a removed .pyc)
        deps.files.append((str(source), str(rel)))
        deps.size_bytes += size
    del root


def top_level_modules(deps: DependencySet) -> list[str]:
    """The importable top-level names the copied files provide (packages and single-file modules)."""
    names: set[str] = set()
    for rel in [r for _s, r in deps.files] + [r for _w, _m, r in deps.wheel_files]:
        head = rel.split("/", 1)[0]
        if head.endswith((".dist-info", ".libs", ".pth", ".data")) or head.startswith("__") or head == "_distutils_hack":
            continue
        if "/" not in rel:
            stem = head.split(".", 1)[0]
            if head.endswith((".py", ".so")) and stem.isidentifier():
                names.add(stem)
        elif head.isidentifier():
            names.add(head)
    deeper = {"pyarrow": "pyarrow.parquet", "sklearn": "sklearn.pipeline", "scipy": "scipy.sparse.linalg",
              "uvloop": "uvloop.loop", "onnxruntime": "onnxruntime.capi"}
    return sorted(names | {deeper[n] for n in names if n in deeper})


# What a server start imports beyond the packages' top level (the flavor's loader, the server's loop and parser)
_WARM_EXTRA = {"skops": ("skops.io",), "uvicorn": ("uvicorn.protocols.http.httptools_impl", "uvicorn.loops.uvloop",
                                                   "uvicorn.lifespan.on"),
               "scikit-learn": ("sklearn.pipeline", "sklearn.compose", "sklearn.preprocessing"),
               "pyarrow": ("pyarrow.parquet",), "onnxruntime": ("onnxruntime",), "torch": ("torch",)}


def warm_modules(deps: DependencySet, wanted: tuple[str, ...]) -> list[str]:
    """Modules the package image's build imports: every top-level package, then what a server start loads."""
    mods = top_level_modules(deps)
    for dist in deps.pins:
        mods += [m for m in _WARM_EXTRA.get(dist, ()) if m not in mods]
    return mods


def bundle_pins(environment: dict[str, Any]) -> dict[str, str]:
    packages = environment.get("packages") or {}
    if not isinstance(packages, dict):
        return {}
    return {str(k): str(v) for k, v in packages.items()}


def wanted_for(flavor: str) -> tuple[str, ...]:
    return SERVER_DISTRIBUTIONS + FLAVOR_DISTRIBUTIONS.get(flavor, ())
