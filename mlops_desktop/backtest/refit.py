"""Walk-forward retraining: a scikit-learn estimator (the `sklearn` recipe's pipeline around it) refitted every k
windows on the rows of the window's train range only, never on a row at or after the range's end."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import UsageError

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.backtest.windows import Window


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        lowered = text.lower()
        return {"true": True, "false": False, "none": None, "null": None}.get(lowered, text)


def parse_recipe(text: str) -> tuple[str, dict[str, Any]]:
    """``sklearn.linear_model.Ridge`` or ``sklearn.ensemble.RandomForestRegressor:n_estimators=50,max_depth=8``
    (also ``sklearn:estimator=CLASS,k=v``, the recipe's own parameter names)."""
    path, _, rest = text.strip().partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--recipe: {item!r} is not key=value",
                             hint="e.g. sklearn.ensemble.RandomForestRegressor:n_estimators=50,max_depth=8")
        params[key.strip()] = _value(value.strip())
    if path == "sklearn":
        estimator = params.pop("estimator", None)
        if not isinstance(estimator, str):
            raise UsageError("--recipe sklearn needs estimator=CLASS, e.g. sklearn:estimator=sklearn.linear_model.Ridge")
        path = estimator
    if not path.startswith("sklearn."):
        raise UsageError(f"--recipe: {path!r} is not a scikit-learn estimator class path",
                         hint="walk-forward refits scikit-learn estimators, e.g. sklearn.linear_model.Ridge")
    return path, params


class Refitter:
    """Holds the model in use; `due(window)` says whether to refit before scoring that window."""

    def __init__(self, path: str, params: dict[str, Any], every: int) -> None:
        from mlops_desktop.recipes.sklearn_recipe import load_estimator

        self.path = path
        self.params = params
        self.every = every
        self.estimator = load_estimator(path, params)
        from sklearn.base import is_classifier

        self.task = "classification" if is_classifier(self.estimator) else "regression"
        self.features: list[str] = []
        self.dtypes: dict[str, str] = {}
        self.model: Any = None
        self.train_rows: int | None = None
        self.fitted_on: tuple[Any, Any] | None = None  # (first, last) time of the rows of the last fit
        self.fits = 0
        self._count = 0
        self._predictor: Any = None

    @classmethod
    def parse(cls, text: str, every: int) -> Refitter:
        path, params = parse_recipe(text)
        return cls(path, params, every)

    def bind(self, features: list[str], dtypes: dict[str, str], task: str) -> None:
        if task != self.task:
            raise UsageError(f"--recipe {self.path} is a {self.task} estimator, but the back-test is {task}")
        if not features:
            raise UsageError("the dataset has no feature columns beside the time and target columns")
        self.features = list(features)
        self.dtypes = dtypes

    def due(self, window: Window) -> bool:
        if window.train_start is None:
            return False
        due = self.model is None or self._count % self.every == 0
        self._count += 1
        return due

    def fit(self, frame: pl.DataFrame, target: str, window: Window) -> None:
        import polars as pl
        from sklearn.base import clone

        from mlops_desktop.recipes.sklearn_recipe import build_pipeline

        frame = frame.filter(pl.col(target).is_not_null())
        if frame.height == 0:
            return
        time_col = frame.columns[0]
        times = frame.get_column(time_col)
        x = frame.select(self.features).to_pandas()
        y = frame.get_column(target).to_pandas()
        model = build_pipeline(clone(self.estimator), x)
        try:
            model.fit(x, y)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"window {window.index}: fitting {self.path} on {frame.height:,} rows failed: "
                             f"{str(exc).splitlines()[0][:300]}") from None
        self.model = model
        self.train_rows = frame.height
        self.fitted_on = (times.min(), times.max())
        self.fits += 1
        self._predictor = None

    def predictor(self) -> Any:
        if self._predictor is None:
            from mlops_desktop.registry.flavors.sklearn import SklearnPredictor
            from mlops_desktop.registry.signature import ColumnSpec, Signature

            inputs = tuple(ColumnSpec(c, self.dtypes.get(c, "float64")) for c in self.features)
            classes = tuple(getattr(self.model, "classes_", ()))
            self._predictor = SklearnPredictor(self.model, Signature(inputs, task=self.task, classes=classes))
        return self._predictor
