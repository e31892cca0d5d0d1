"""Build the tiny server's images (and a router image from this environment) FROM an engine's base image: used by
the deploy tests' fixtures and by benchmarks/deploy_rollout.py."""

from __future__ import annotations

import importlib
import io
import secrets
import tarfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
TINY_MODES = {"v1": ("1", "ok"), "v2": ("2", "ok"), "v3": ("3", "ok"), "crash": ("9", "crash"),
              "unready": ("8", "unready"), "slow": ("2", "slow")}
ROUTER_PACKAGES = ("httptools", "orjson", "prometheus_client", "uvloop")


def _context(files: dict[str, bytes], trees: dict[str, Path] | None = None) -> io.BytesIO:
    buf = io.BytesIO()

    def skip(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if "__pycache__" in info.name else info

    with tarfile.open(fileobj=buf, mode="w") as tar:
        for arcname, data in files.items():
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for arcname, path in (trees or {}).items():
            tar.add(path, arcname, filter=skip)
    buf.seek(0)
    return buf


def build_tiny_images(client: Any, base_image: str, prefix: str | None = None) -> dict[str, str]:
    """{"v1": ref, ..., "crash": ref, "unready": ref, "slow": ref} on the client's engine."""
    tag = prefix or f"mlt-deploy-tiny-{secrets.token_hex(3)}"
    made = {}
    for key, (version, mode) in TINY_MODES.items():
        dockerfile = (f"FROM {base_image}\nCOPY server.py /srv/server.py\n"
                      f"ENV TINY_VERSION={version} TINY_MODE={mode} TINY_READY_AFTER=10\n"
                      'CMD ["python3", "-u", "/srv/server.py"]\n')
        ref = f"{tag}:{key}"
        client.images.build(fileobj=_context({"Dockerfile": dockerfile.encode(),
                                              "server.py": (HERE / "server.py").read_bytes()}),
                            custom_context=True, tag=ref, rm=True, labels={"mlops-test.deploy": tag})
        made[key] = ref
    return made


def build_router_image(client: Any, base_image: str, prefix: str | None = None) -> str:
    """What containers.build_router_image makes (the server code without a model, running the router), put
    together from this environment's packages so the A/B tests need no full model image build."""
    import mlops_desktop

    ref = f"{prefix or 'mlt-deploy-router-' + secrets.token_hex(3)}:test"
    dockerfile = (f"FROM {base_image}\nCOPY site/ /opt/site/\nCOPY app/ /opt/app/\n"
                  "ENV PYTHONPATH=/opt/site:/opt/app PYTHONUNBUFFERED=1\n"
                  "RUN mkdir -p /var/lib/mlops\nWORKDIR /var/lib/mlops\n"
                  'CMD ["python3", "-m", "mlops_desktop.serving.router"]\n')
    trees = {"app/mlops_desktop": Path(mlops_desktop.__file__).parent}
    for name in ROUTER_PACKAGES:
        trees[f"site/{name}"] = Path(str(importlib.import_module(name).__file__)).parent
    client.images.build(fileobj=_context({"Dockerfile": dockerfile.encode()}, trees), custom_context=True, tag=ref,
                        rm=True, labels={"mlops-test.deploy": ref})
    return ref


def remove_images(client: Any, refs: list[str]) -> None:
    for ref in refs:
        try:
            client.images.remove(ref, force=True)
        except Exception:  # noqa: S112 - best effort: a task that is going away may still hold it
            continue
