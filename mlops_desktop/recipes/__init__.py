"""Built-in training recipes, run as jobs: `python -m mlops_desktop.recipes NAME --param key=value ...`."""

from __future__ import annotations

RECIPES = {
    "sklearn": "mlops_desktop.recipes.sklearn_recipe",
    "torch-mlp": "mlops_desktop.recipes.torch_mlp",
}

__all__ = ["RECIPES"]
