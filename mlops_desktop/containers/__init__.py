"""Model images: generated Dockerfiles, builds through the Docker SDK, smoke tests and pushes.

The public surface (what the CLI, the GUI, deploy and promotion call):
    build_image(ws, "MODEL@ALIAS" | "MODEL/VERSION", base=, docker_host=, tag=, on_log=, cancel=) -> ImageRecord
    build_router_image(ws, ...) -> ImageRecord        (server code, no model; runs the A/B router)
    push_image(ws, image, registry, docker_host=, on_log=) -> ImageRecord   (digest filled)
    smoke_test(ws, image, ref, docker_host=, sample_rows=200) -> SmokeResult
    images_for(ws, model, version) -> [ImageRecord];  get_image(ws, tag_or_digest) -> ImageRecord
The docker SDK is imported only inside these calls.
"""

from __future__ import annotations

from mlops_desktop.containers.build import BuildCancelled, BuildFailed
from mlops_desktop.containers.engine import EngineError, EngineUnreachable
from mlops_desktop.containers.images import (
           DEFAULT_BASE,
           build_image,
           build_router_image,
           get_image,
           images_for,
           list_images,
)
from mlops_desktop.containers.push import PushFailed, push_image
from mlops_desktop.containers.records import ImageRecord
from mlops_desktop.containers.smoke import SmokeResult, smoke_test

__all__ = ["DEFAULT_BASE", "BuildCancelled", "BuildFailed", "EngineError", "EngineUnreachable", "ImageRecord",
           "PushFailed", "SmokeResult", "build_image", "build_router_image", "get_image", "images_for",
           "list_images", "push_image", "smoke_test"]
