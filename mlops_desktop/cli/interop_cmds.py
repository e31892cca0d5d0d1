"""`mlops-desktop import neptune`, `export kfp|kserve` and `notebook`: other tools' formats in and out, and JupyterLab."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mlops_desktop.cli.common import command, open_workspace
from mlops_desktop.cli.output import emit_json, table


def _subcommands(sub: argparse._SubParsersAction, name: str, dest: str, help: str, metavar: str) -> Any:
    """The subcommand group NAME (created if no other module made it), so that sources can join `import`."""
    parser = sub.choices.get(name)
    if parser is None:
        parser = sub.add_parser(name, help=help)
        return parser.add_subparsers(dest=dest, metavar=metavar, required=True)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise AssertionError(f"command {name!r} has no subcommands")


def register(sub: argparse._SubParsersAction) -> None:
    imp = _subcommands(sub, "import", "import_command", "import from other tools", "SOURCE")
    p = command(imp, "neptune", cmd_import_neptune,
                "import a Neptune Exporter export (Parquet) or the Neptune client's offline folders (.neptune/)")
    p.add_argument("path", metavar="PATH", help="the exporter's output folder (holding data/ and files/) or its data "
                   "folder; or a folder holding .neptune/, .neptune itself, its offline/ or async/, or one run__ folder")
    p.add_argument("--files", metavar="DIR", help="the exporter's files folder (default: PATH/files); for .neptune/, "
                   "where uploaded files moved to (looked up by name when not at the path the run recorded)")
    p.add_argument("--project", action="append", metavar="ORG/PROJECT", help="only this Neptune project (repeatable); "
                   "for .neptune/ folders, the experiment to import into (default: neptune-offline)")
    p.add_argument("--skip-incomplete", action="store_true",
                   help="import the runs whose export finished and skip the others (default: refuse the export)")
    p.add_argument("--allow-missing-files", action="store_true",
                   help="import runs even when files they refer to are not in the export")

    exp = _subcommands(sub, "export", "export_command", "export to other tools", "TARGET")
    p = command(exp, "kfp", cmd_export_kfp, "compile a project's pipeline (and a training step) into a Kubeflow "
                "Pipelines v2 YAML, each step a container running the project's image")
    p.add_argument("pipeline", metavar="PIPELINE", help="a pipeline of the project's mlops.toml")
    p.add_argument("--output", "-o", required=True, metavar="FILE", help="where to write the pipeline YAML")
    p.add_argument("--project", metavar="DIR", help="project directory holding mlops.toml (default: current dir)")
    p.add_argument("--image", metavar="REF", help="the image every step runs (default: [kubeflow] image in "
                   "mlops.toml, else local/<project>:latest)")
    p.add_argument("--recipe", metavar="NAME", help="append a training step running this recipe "
                   "(default: [training] recipe in mlops.toml)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a recipe parameter (repeatable)")
    p.add_argument("--no-training", action="store_true", help="leave out the training step")

    p = command(exp, "kserve", cmd_export_kserve, "write a model version as a KServe InferenceService manifest "
                "(its image, the v2 protocol's probes, resources, a canary percent)")
    p.add_argument("ref", metavar="MODEL@ALIAS|MODEL/VERSION", help="the model version")
    p.add_argument("--output", "-o", required=True, metavar="FILE", help="where to write the manifest YAML")
    p.add_argument("--image", metavar="REF", help="the image (default: the version's pushed image, from `images`)")
    p.add_argument("--name", help="the InferenceService name (default: the model's)")
    p.add_argument("--namespace", help="metadata.namespace")
    p.add_argument("--canary-percent", type=int, metavar="P", help="canaryTrafficPercent for this version")
    p.add_argument("--min-replicas", type=int, default=1, help="minReplicas (default 1)")
    p.add_argument("--max-replicas", type=int, help="maxReplicas")
    p.add_argument("--cpu", help="CPU request and limit, e.g. 500m or 2")
    p.add_argument("--memory", help="memory request and limit, e.g. 512Mi")
    p.add_argument("--gpus", type=int, default=0, help="nvidia.com/gpu limit")
    p.add_argument("--pull-secret", metavar="NAME", help="an imagePullSecret of the namespace")

    p = command(sub, "notebook", cmd_notebook, "start JupyterLab on 127.0.0.1 with this workspace selected, and open it")
    p.add_argument("--dir", metavar="DIR", help="notebook folder (default: the workspace's notebooks/)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="print the address instead of opening a browser")
    p.add_argument("--open", metavar="NOTEBOOK", help="open this notebook (a path in the notebook folder)")


def cmd_import_neptune(args: argparse.Namespace) -> int:
    from mlops_desktop.interop.neptune_import import import_neptune
    from mlops_desktop.progress import Progress

    def report(fraction: float, message: str) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\r{fraction:5.0%} {message[:60]:60}", end="", file=sys.stderr, flush=True)

    with open_workspace(args) as ws:
        stats = import_neptune(ws.tracking, args.path, files_path=args.files, projects=args.project,
                               skip_incomplete=args.skip_incomplete, allow_missing_files=args.allow_missing_files,
                               progress=Progress(report, min_step=0.01))
    if args.json:
        emit_json(stats.to_dict())
        return 0
    if sys.stderr.isatty():
        print(file=sys.stderr)
    table(["imported", "count"], [("projects", stats.projects), ("runs", stats.runs),
                                  ("runs already present", stats.runs_skipped),
                                  ("runs not finished exporting (skipped)", stats.runs_incomplete),
                                  ("forks linked to their parent", stats.forks), ("params", stats.params),
                                  ("tags", stats.tags), ("metric points", stats.metric_points),
                                  ("string series", stats.string_series), ("artifacts", stats.artifacts)])
    for w in stats.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_export_kfp(args: argparse.Namespace) -> int:
    from mlops_desktop.execution.launch import parse_params
    from mlops_desktop.interop.kfp_export import export_kfp

    result = export_kfp(args.pipeline, args.output, project_dir=args.project, image=args.image,
                        recipe=args.recipe, recipe_params=parse_params(args.param) or None,
                        training=not args.no_training)
    if args.json:
        emit_json(result.to_dict())
    else:
        table(["step", "command"], [(s.name, s.shell) for s in result.steps], max_width=100)
        print(f"wrote {result.output} (image {result.image})")
    return 0


def cmd_export_kserve(args: argparse.Namespace) -> int:
    from mlops_desktop.interop.kserve_export import export_kserve

    with open_workspace(args) as ws:
        result = export_kserve(ws, args.ref, args.output, image=args.image, name=args.name,
                               namespace=args.namespace, canary_percent=args.canary_percent,
                               min_replicas=args.min_replicas, max_replicas=args.max_replicas, cpu=args.cpu,
                               memory=args.memory, gpus=args.gpus, pull_secret=args.pull_secret)
    if args.json:
        emit_json(result.to_dict())
        return 0
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {result.output}: InferenceService {result.manifest['metadata']['name']} serving "
          f"{result.model}/{result.version} from {result.image}")
    return 0


def cmd_notebook(args: argparse.Namespace) -> int:
    from mlops_desktop.notebook.server import run_jupyterlab

    with open_workspace(args) as ws:
        home = ws.paths.root
    return run_jupyterlab(home, notebook_dir=args.dir, port=args.port, open_browser=not args.no_browser,
                          as_json=args.json, notebook=args.open)
