"""The scikit-learn predictor gives the estimator's own answers, from columns, in one call per batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression

from mlops_desktop.registry.flavors.sklearn import SklearnPredictor
from mlops_desktop.registry.signature import ColumnSpec, Signature


def _frame(x):
    return pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])


def _signature(frame, task):
    return Signature(tuple(ColumnSpec(c, "float64") for c in frame.columns), task=task)


def test_classifier_labels_equal_predict_and_probabilities_are_returned():
    x, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0)
    frame = _frame(x)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(frame, np.array(["a", "b", "c"])[y])
    out = SklearnPredictor(model, _signature(frame, "classification")).predict(
        {c: frame[c].to_numpy() for c in frame.columns})
    np.testing.assert_array_equal(out["prediction"], model.predict(frame))
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(frame))


def test_regressor_and_column_order_from_the_signature():
    x, y = make_regression(n_samples=50, n_features=4, random_state=0)
    frame = _frame(x)
    model = LinearRegression().fit(frame, y)
    shuffled = {c: frame[c].to_numpy() for c in reversed(frame.columns)}  # payload order differs from the model's
    out = SklearnPredictor(model, _signature(frame, "regression")).predict(shuffled)
    np.testing.assert_allclose(out["prediction"], model.predict(frame))
    assert "probabilities" not in out
