"""Project snapshots over SFTP: upload only files whose content changed, with .gitignore-style excludes."""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import stat
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_desktop.errors import UsageError
from mlops_desktop.progress import Progress

MANIFEST = ".mlops-manifest.json"
DEFAULT_EXCLUDES = [".git/", ".hg/", ".svn/", ".venv/", "venv/", "__pycache__/", "*.pyc", ".mypy_cache/",
                    ".pytest_cache/", ".ruff_cache/", "node_modules/", ".DS_Store", ".ipynb_checkpoints/", MANIFEST,
                    ".tox/", ".nox/", ".cache/", ".eggs/", "*.egg-info/", ".hypothesis/", ".coverage"]
ENVIRONMENT_MARKERS = ("pyvenv.cfg", "conda-meta")  # a folder holding one is a Python environment
IGNORE_FILES = (".gitignore", ".mlopsignore")
PARALLEL_CHANNELS = 4
DEFAULT_MODE = 0o644
MAX_FILES = 50_000
MAX_BYTES = 4 << 30


@dataclass
class LocalFile:
    rel: str  # posix path relative to the project root
    path: Path
    size: int
    mode: int
    sha256: str = ""


@dataclass
class SyncResult:
    files: int = 0
    uploaded: int = 0
    deleted: int = 0
    bytes_uploaded: int = 0
    remote_dir: str = ""
    uploaded_paths: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "uploaded_paths"}


def load_excludes(root: Path, extra: list[str] | None = None) -> Any:
    """A pathspec matcher: defaults + root .gitignore/.mlopsignore + extra patterns."""
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(list(DEFAULT_EXCLUDES) + list(extra or []) + _ignore_lines(root))


def _ignore_lines(folder: Path) -> list[str]:
    lines: list[str] = []
    for name in IGNORE_FILES:  # .mlopsignore last: its patterns win over the .gitignore's
        f = folder / name
        if f.is_file():
            try:
                lines += f.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"cannot read {f}: {exc}") from None
    return lines


class Ignores:
    """What a project sync leaves out, as git would: every .gitignore/.mlopsignore in the tree applies to its own
    folder (the deepest file with an opinion on a path decides, ``!pattern`` re-includes), then the defaults
    (version control, virtual environments, caches). A folder holding a virtual environment (``pyvenv.cfg``) or a
    conda environment (``conda-meta/``) is left out whatever its name."""

    def __init__(self, root: Path, extra: list[str] | None = None) -> None:
        import pathspec

        self.root = root
        self.base = pathspec.GitIgnoreSpec.from_lines(list(DEFAULT_EXCLUDES) + list(extra or []))
        self.specs: dict[str, Any] = {}

    def enter(self, rel_dir: str, folder: Path) -> None:
        """Read the ignore files of a folder being walked (``rel_dir``: "" for the root, else "a/b")."""
        import pathspec

        lines = _ignore_lines(folder)
        if lines:
            self.specs[rel_dir] = pathspec.GitIgnoreSpec.from_lines(lines)

    def ignored(self, rel: str, is_dir: bool, folder: Path | None = None) -> bool:
        path = rel + "/" if is_dir else rel
        parts = rel.split("/")
        for depth in range(len(parts) - 1, -1, -1):
            spec = self.specs.get("/".join(parts[:depth]))
            if spec is None:
                continue
            prefix = "/".join(parts[:depth])
            result = spec.check_file(path[len(prefix) + 1:] if prefix else path)
            if result.include is not None:
                return bool(result.include)
        if is_dir and folder is not None and any((folder / m).exists() for m in ENVIRONMENT_MARKERS):
            return True
        return bool(self.base.match_file(path))


def walk(root: Path, excludes: list[str] | None = None) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(posix path relative to root, path, stat) of every regular file a sync takes, in a stable order."""
    ignores = Ignores(root, excludes)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        ignores.enter(rel_dir, here)
        prefix = rel_dir + "/" if rel_dir else ""
        dirnames[:] = sorted(d for d in dirnames if not ignores.ignored(prefix + d, True, here / d))
        for name in sorted(filenames):
            rel = prefix + name
            if ignores.ignored(rel, False):
                continue
            path = here / name
            try:
                st = path.stat()
            except OSError:
                continue  # a dangling symlink or a file removed while walking
            if stat.S_ISREG(st.st_mode):
                yield rel, path, st


@dataclass
class Estimate:
    """What a sync of a folder would take: file count and bytes (``complete`` False: it stopped counting at a
    cap, the folder holds at least that much), and the largest files (for the message that names them)."""

    files: int = 0
    bytes: int = 0
    complete: bool = True
    largest: list[tuple[str, int]] = field(default_factory=list)


def estimate(root: Path, excludes: list[str] | None = None, *, max_files: int = MAX_FILES,
             max_bytes: int = MAX_BYTES) -> Estimate:
    """Count what a sync of ``root`` would upload (no hashing: a walk and a stat per file)."""
    import heapq

    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"project directory {root} does not exist or is not a directory")
    out = Estimate()
    heap: list[tuple[int, str]] = []
    for rel, _path, st in walk(root, excludes):
        out.files += 1
        out.bytes += st.st_size
        heapq.heappush(heap, (st.st_size, rel))
        if len(heap) > 3:
            heapq.heappop(heap)
        if out.files > max_files or out.bytes > max_bytes:
            out.complete = False
            break
    out.largest = [(rel, size) for size, rel in sorted(heap, reverse=True)]
    return out


def scan(root: Path, excludes: list[str] | None = None) -> list[LocalFile]:
    """Every regular file under `root` not excluded, with its content hash."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"project directory {root} does not exist or is not a directory")
    out: list[LocalFile] = []
    total = 0
    for rel, path, st in walk(root, excludes):
        out.append(LocalFile(rel, path, st.st_size, stat.S_IMODE(st.st_mode), _sha256(path)))
        total += st.st_size
        if len(out) > MAX_FILES or total > MAX_BYTES:
            raise UsageError(f"project {root} holds more than {MAX_FILES:,} files or {MAX_BYTES >> 30} GiB "
                             f"(at {rel}); is it really the project folder?",
                             hint="pass --project DIR, or exclude data and outputs in .gitignore/.mlopsignore")
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return h.hexdigest()


def _remote_listing(sftp: Any, root: str) -> dict[str, tuple[int, int]]:
    """rel -> (size, mtime) of every regular file under the remote root (empty if it does not exist)."""
    out: dict[str, tuple[int, int]] = {}
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = sftp.listdir_attr(posixpath.join(root, rel_dir) if rel_dir else root)
        except FileNotFoundError:
            continue
        for e in entries:
            rel = f"{rel_dir}/{e.filename}" if rel_dir else e.filename
            if stat.S_ISDIR(e.st_mode or 0):
                stack.append(rel)
            elif stat.S_ISREG(e.st_mode or 0):
                out[rel] = (int(e.st_size or 0), int(e.st_mtime or 0))
    return out


def _read_manifest(sftp: Any, root: str) -> dict[str, list[Any]]:
    try:
        with sftp.open(posixpath.join(root, MANIFEST), "rb") as fh:
            data = json.loads(fh.read().decode("utf-8"))
        return data.get("files", {}) if isinstance(data, dict) else {}
    except (OSError, ValueError, UnicodeDecodeError):
        return {}


def mkdirs(sftp: Any, path: str, known: set[str]) -> None:
    """mkdir -p over SFTP, remembering what exists."""
    missing = []
    p = path
    while p and p not in known and p != "/":
        try:
            if stat.S_ISDIR(sftp.stat(p).st_mode or 0):
                break
            raise UsageError(f"remote path {p} exists and is not a directory")
        except FileNotFoundError:
            missing.append(p)
            p = posixpath.dirname(p)
    for d in reversed(missing):
        try:
            sftp.mkdir(d)
        except OSError:
            if not stat.S_ISDIR(sftp.stat(d).st_mode or 0):
                raise
        known.add(d)
    known.add(path)


def sync_dir(session: Any, local_root: Path, remote_root: str, *, excludes: list[str] | None = None,
             progress: Progress | None = None) -> SyncResult:
    """Make `remote_root` hold exactly the non-excluded files of `local_root`; uploads only changed content.

    A file is unchanged when the remote manifest records the same sha256 and the remote size and mtime still match
    what the manifest recorded (so a file edited on the remote is uploaded again). Uploads go to a temporary name
    and are renamed into place, so a job reading hard-linked snapshot copies never sees a half-written file.
    """
    progress = progress or Progress()
    files = scan(local_root, excludes)
    sftp = session.sftp
    known_dirs: set[str] = set()
    mkdirs(sftp, remote_root, known_dirs)
    manifest = _read_manifest(sftp, remote_root)
    listing = _remote_listing(sftp, remote_root)
    result = SyncResult(files=len(files), remote_dir=remote_root)
    todo: list[LocalFile] = []
    new_manifest: dict[str, list[Any]] = {}
    for f in files:
        rec = manifest.get(f.rel)
        remote = listing.get(f.rel)
        if rec and remote and rec[0] == f.sha256 and remote == (rec[1], rec[2]):
            new_manifest[f.rel] = rec
        else:
            todo.append(f)
    wanted = {f.rel for f in files}
    stale = [rel for rel in listing if rel not in wanted and rel != MANIFEST]
    progress.update(0.0, f"uploading {len(todo)} of {len(files)} files")
    for f in todo:  # directories first, serially (cheap, and avoids mkdir races)
        mkdirs(sftp, posixpath.dirname(posixpath.join(remote_root, f.rel)), known_dirs)
    lock = threading.Lock()
    done = [0]

    def upload(batch: list[LocalFile], client: Any) -> None:
        for f in batch:
            progress.check()
            target = posixpath.join(remote_root, f.rel)
            tmp = posixpath.join(posixpath.dirname(target), f".{posixpath.basename(target)}.mlops-tmp")
            with f.path.open("rb") as fh:
                client.putfo(fh, tmp, file_size=f.size, confirm=False)
            if f.mode & 0o777 != DEFAULT_MODE:  # new files get 0644 from the server's umask; skip a round trip
                client.chmod(tmp, f.mode & 0o777)
            client.posix_rename(tmp, target)
            with lock:
                new_manifest[f.rel] = [f.sha256, f.size, 0]  # remote mtime filled in below, per directory
                result.uploaded += 1
                result.bytes_uploaded += f.size
                result.uploaded_paths.append(f.rel)
                done[0] += 1
                progress.update(done[0] / max(1, len(todo)), f"uploaded {done[0]} of {len(todo)} files")

    if len(todo) > 32:
        extra = [session.client.open_sftp() for _ in range(PARALLEL_CHANNELS - 1)]
        clients = [sftp, *extra]
        try:
            with ThreadPoolExecutor(len(clients)) as pool:
                futures = [pool.submit(upload, todo[i::len(clients)], c) for i, c in enumerate(clients)]
                for fut in futures:
                    fut.result()
        finally:
            for c in extra:
                c.close()
    else:
        upload(todo, sftp)
    if todo:  # one listing per touched directory instead of one stat per file
        touched = {posixpath.dirname(f.rel) for f in todo}
        for rel_dir in touched:
            folder = posixpath.join(remote_root, rel_dir) if rel_dir else remote_root
            for e in sftp.listdir_attr(folder):
                rel = f"{rel_dir}/{e.filename}" if rel_dir else e.filename
                if rel in new_manifest and new_manifest[rel][2] == 0:
                    new_manifest[rel] = [new_manifest[rel][0], int(e.st_size or 0), int(e.st_mtime or 0)]
    for rel in stale:
        try:
            sftp.remove(posixpath.join(remote_root, rel))
            result.deleted += 1
        except FileNotFoundError:
            pass
    if todo or stale or set(manifest) != set(new_manifest):
        payload = json.dumps({"version": 1, "files": new_manifest}, sort_keys=True).encode()
        tmp = posixpath.join(remote_root, MANIFEST + ".tmp")
        with sftp.open(tmp, "wb") as fh:
            fh.write(payload)
        sftp.posix_rename(tmp, posixpath.join(remote_root, MANIFEST))
    progress.update(1.0, f"{result.uploaded} uploaded, {result.deleted} deleted")
    return result
