"""Export a project's pipeline (mlops.toml steps and a training recipe) as a Kubeflow Pipelines v2 YAML via kfp."""

from __future__ import annotations

import os
import re
import shlex
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlops_desktop.data.project import Project, find_project
from mlops_desktop.errors import UsageError

IMAGE_PROJECT_DIR = "/project"  # where the project's image holds the project (its mlops.toml)
IMAGE_WORKSPACE = "/workspace"  # MLOPS_DESKTOP_HOME in every step: a volume the steps share (lake, runs)
_IMAGE_REF = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
                        r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")


@dataclass
class KfpStep:
    name: str  # the component's name in the YAML (comp-NAME, exec-NAME)
    display: str  # the step as mlops.toml names it (pipeline.step) or "train"
    argv: list[str]  # command + args of the container: what runs the step here
    after: list[str] = field(default_factory=list)

    @property
    def shell(self) -> str:
        return shlex.join(self.argv)


@dataclass
class KfpExport:
    output: str
    pipeline: str
    image: str
    steps: list[KfpStep]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_image(project: Project) -> str:
    """The image the steps run: [kubeflow] image in mlops.toml, else local/<project folder>:latest.

    Seam: the containers capability will build and name the project's image; its reference replaces this default.
    """
    configured = (project.config.get("kubeflow") or {}).get("image")
    if configured:
        return str(configured)
    name = re.sub(r"[^a-z0-9]+", "-", project.root.name.lower()).strip("-") or "project"
    return f"local/{name}:latest"


def check_image(ref: str) -> str:
    if not _IMAGE_REF.match(ref) or len(ref) > 255:
        raise UsageError(f"{ref!r} is not a valid image reference",
                         hint="e.g. registry.example:5000/team/churn:1.2 (lowercase name, optional :tag or @sha256:...)")
    return ref


def pipeline_steps(project: Project, pipeline: str, *, recipe: str | None = None,
                   recipe_params: dict[str, str] | None = None, training: bool = True,
                   project_dir: str = IMAGE_PROJECT_DIR) -> list[KfpStep]:
    """One step per mlops.toml step of PIPELINE (dependency order), plus the training recipe as the final step."""
    from mlops_desktop.data.pipeline import plan
    from mlops_desktop.execution.launch import build_argv

    if pipeline not in project.pipelines:
        raise UsageError(f"{project.config_path} has no pipeline {pipeline!r}",
                         hint="pipelines: " + (", ".join(project.pipelines) or "none"))
    planned = plan(project, pipeline, set())
    producers = {step.output: step.qualified for step, _ in planned}
    names: dict[str, str] = {}
    steps: list[KfpStep] = []
    for step, refs in planned:
        names[step.qualified] = _component_name(step.qualified, set(names.values()))
        after = sorted({names[producers[r.split("@")[0]]] for r in refs if r.split("@")[0] in producers})
        steps.append(KfpStep(names[step.qualified], step.qualified,
                             ["mlops-desktop", "data", "run", step.qualified, "--project", project_dir], after))
    training_cfg = project.config.get("training") or {}
    recipe = recipe or training_cfg.get("recipe")
    if training and recipe:
        from mlops_desktop.recipes import RECIPES

        if recipe not in RECIPES:
            raise UsageError(f"unknown training recipe {recipe!r}", hint="recipes: " + ", ".join(sorted(RECIPES)))
        params = {str(k): str(v) for k, v in (training_cfg.get("params") or {}).items()}
        params.update(recipe_params or {})
        if "data" not in params and planned:
            params["data"] = f"lake:{planned[-1][0].output}"  # the pipeline's last output
        argv = build_argv("recipe", python="python", recipe=recipe, params=params)
        leaves = [s.name for s in steps if not any(s.name in o.after for o in steps)]
        steps.append(KfpStep(_component_name("train", set(names.values())), "train", argv, leaves))
    return steps


def export_kfp(pipeline: str, output: str | Path, *, project_dir: str | Path | None = None,
               image: str | None = None, recipe: str | None = None, recipe_params: dict[str, str] | None = None,
               training: bool = True, image_project_dir: str = IMAGE_PROJECT_DIR,
               workspace_dir: str = IMAGE_WORKSPACE) -> KfpExport:
    """Compile the pipeline with the kfp SDK into OUTPUT (written whole or not at all)."""
    try:
        from kfp import compiler, dsl
    except ImportError:
        raise UsageError("exporting to Kubeflow Pipelines needs the kfp package",
                         hint='pip install "mlops-desktop[kubeflow]" (or: pip install kfp)') from None
    project = find_project(project_dir, required=True)
    assert project is not None
    image = check_image(image or default_image(project))
    steps = pipeline_steps(project, pipeline, recipe=recipe, recipe_params=recipe_params, training=training,
                           project_dir=image_project_dir)
    components = {s.name: _container_component(dsl, s, image) for s in steps}

    def build():  # the pipeline body; kfp reads its signature
        tasks: dict[str, Any] = {}
        for s in steps:
            task = components[s.name]()
            task.set_display_name(s.display)
            task.set_env_variable("MLOPS_DESKTOP_HOME", workspace_dir)
            task.set_caching_options(False)  # `data run` skips unchanged steps itself, from the shared workspace
            for dep in s.after:
                task.after(tasks[dep])
            tasks[s.name] = task

    build.__name__ = _component_name(pipeline, set())
    pipeline_func = dsl.pipeline(name=_kfp_name(f"{project.root.name}-{pipeline}"),
                                 description=f"mlops.toml pipeline {pipeline!r} of {project.root.name}, "
                                             "exported by MLOps Desktop")(build)
    target = Path(output)
    if target.parent and not target.parent.exists():
        raise UsageError(f"the folder {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".yaml")
    os.close(fd)
    try:
        compiler.Compiler().compile(pipeline_func, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return KfpExport(str(target), pipeline, image, steps)


def _container_component(dsl: Any, step: KfpStep, image: str) -> Any:
    argv = list(step.argv)

    def component():  # kfp reads the signature: no return annotation (it would be the string 'Any')
        return dsl.ContainerSpec(image=image, command=argv[:1], args=argv[1:])

    component.__name__ = step.name
    return dsl.container_component(component)


def _component_name(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "step"
    if base[0].isdigit():
        base = f"step_{base}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def _kfp_name(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:100] or "pipeline"
