"""Entry point of recipe jobs: parses --param key=value pairs and runs the named recipe inside a tracked run."""

from __future__ import annotations

import argparse
import importlib
import sys

from mlops_desktop.errors import MlopsError
from mlops_desktop.recipes import RECIPES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_desktop.recipes")
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    from mlops_desktop.execution.launch import parse_params

    try:
        params = parse_params(args.param)
        module = importlib.import_module(RECIPES[args.recipe])
        module.run(params)
    except MlopsError as exc:
        print(f"recipe {args.recipe}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
