"""Build contexts as tar streams: files are added from where they are (site-packages, the bundle, the package),
never copied into a folder first; compiled libraries are stripped once into a cache (binutils `strip`)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import IO

import mlops_desktop

# The parts of our package a server or router image never runs
# (containers/deploy/promotion/backtest: they drive engines from the desktop; a change there must not rebuild the
# server-code layer of every image)
APP_SKIP = {"gui", "notebook", "interop", "containers", "deploy", "promotion", "backtest", "__pycache__"}
APP_SKIP_FILES = {"demo.py"}
_FIXED_MTIME = 1_700_000_000  # generated files get one fixed time, so the same content is the same layer


class BuildContext:
    """A tar build context written to a temporary file; `.fileobj()` hands it to the engine."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="mlops-build-")
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.PAX_FORMAT)
        self.names: set[str] = set()

    def add_bytes(self, arcname: str, data: bytes, mode: int = 0o644) -> None:
        info = tarfile.TarInfo(arcname)
        info.size, info.mode, info.mtime = len(data), mode, _FIXED_MTIME
        self._tar.addfile(info, io.BytesIO(data))
        self.names.add(arcname)

    def add_dir(self, arcname: str) -> None:
        info = tarfile.TarInfo(arcname)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _FIXED_MTIME
        self._tar.addfile(info)
        self.names.add(arcname)

    def add_file(self, arcname: str, source: str | Path) -> None:
        """A file as it is on disk, world-readable (the image runs as a non-root user), owned by root."""
        src = Path(source)
        st = src.stat()
        info = tarfile.TarInfo(arcname)
        info.size = st.st_size
        info.mtime = int(st.st_mtime)
        info.mode = 0o755 if st.st_mode & 0o111 else 0o644
        with src.open("rb") as fh:
            self._tar.addfile(info, fh)
        self.names.add(arcname)

    def fileobj(self) -> IO[bytes]:
        self._tar.close()
        self._file.seek(0)
        return self._file

    @property
    def size(self) -> int:
        return self._file.seek(0, os.SEEK_END)

    def close(self) -> None:
        self._tar.close()
        self._file.close()


def add_app(ctx: BuildContext, prefix: str = "app") -> int:
    """Our package without the GUI and other faces a server never loads; returns the number of files."""
    root = Path(mlops_desktop.__file__).parent
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in APP_SKIP)
        rel_dir = Path(dirpath).relative_to(root.parent)
        for name in sorted(filenames):
            if name.endswith((".py", ".typed")) and not (rel_dir == Path("mlops_desktop") and name in APP_SKIP_FILES):
                ctx.add_file(f"{prefix}/{(rel_dir / name).as_posix()}", Path(dirpath) / name)
                count += 1
    return count


def add_wheel_files(ctx: BuildContext, files: list[tuple[str, str, str]], prefix: str) -> None:
    """Members of downloaded wheels, unpacked into the context as an installer would place them."""
    import zipfile

    by_wheel: dict[str, list[tuple[str, str]]] = {}
    for wheel, member, rel in files:
        by_wheel.setdefault(wheel, []).append((member, rel))
    for wheel, members in by_wheel.items():
        with zipfile.ZipFile(wheel) as zf:
            for member, rel in members:
                mode = (zf.getinfo(member).external_attr >> 16) & 0o777
                ctx.add_bytes(f"{prefix}/{rel}", zf.read(member), 0o755 if mode & 0o111 else 0o644)


def is_shared_library(name: str) -> bool:
    return name.endswith(".so") or ".so." in name


def strippable(source: str, rel: str) -> bool:
    """Only libraries auditwheel did not touch: the ones it grafted (`*.libs/`) or re-pointed at them (an RPATH
    naming a `.libs` folder) were edited with patchelf, and `strip` breaks such files ("ELF load command
    address/offset not page-aligned")."""
    if any(part.endswith(".libs") for part in rel.split("/")[:-1]):
        return False
    tool = shutil.which("readelf")
    if tool is None:
        return False
    try:
        done = subprocess.run([tool, "-d", source], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    if done.returncode != 0:
        return False
    paths = [line for line in done.stdout.splitlines() if "(RPATH)" in line or "(RUNPATH)" in line]
    return not any(".libs" in line for line in paths)


def stripped(source: str, rel: str, cache: Path) -> str:
    """A copy of a shared library without its debug symbols (cached by path, size and time), or the file itself
    when it must not be stripped or `strip` is missing or fails. `--strip-unneeded` keeps what the dynamic loader
    needs."""
    tool = shutil.which("strip")
    if tool is None:
        return source
    st = os.stat(source)
    key = hashlib.sha256(f"{os.path.realpath(source)}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:32]
    target = cache / f"{key}-{os.path.basename(source)}"
    keep = cache / f"{key}.keep"  # remembered: this one stays as it is
    if target.exists():
        return str(target)
    if keep.exists():
        return source
    cache.mkdir(parents=True, exist_ok=True)
    if not strippable(source, rel):
        keep.touch()
        return source
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    done = subprocess.run([tool, "--strip-unneeded", str(tmp)], capture_output=True, timeout=120, check=False)
    if done.returncode != 0 or tmp.stat().st_size == 0 or tmp.stat().st_size > st.st_size * 0.95:
        tmp.unlink(missing_ok=True)  # failed, or not worth a second copy
        keep.touch()
        return source
    os.replace(tmp, target)
    return str(target)
