"""Batch scoring gives model.predict's answers on the same rows, from the lake or a file, into a file or the lake."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_desktop import registry
from mlops_desktop.errors import UsageError
from mlops_desktop.progress import Progress
from mlops_desktop.registry.batch import predict_batch
from tests.registry.conftest import churn_frame


@pytest.fixture
def version(ws, churn_run):
    return registry.register(ws, churn_run, "churn").version


@pytest.mark.parametrize("prefer_onnx", [True, False])
def test_file_to_file_equals_model_predict(ws, version, churn_model, tmp_path, prefer_onnx):
    rows = churn_frame(5000, seed=7).drop(columns=["churned"])
    rows.to_parquet(tmp_path / "in.parquet")
    seen: list[float] = []
    result = predict_batch(ws, "churn/1", input_path=str(tmp_path / "in.parquet"), output=str(tmp_path / "out.parquet"),
                           batch_rows=1024, prefer_onnx=prefer_onnx, progress=Progress(lambda f, m: seen.append(f)))
    assert result.rows == 5000 and result.batches == 5 and seen[-1] == 1.0
    assert result.serving_path == ("onnxruntime" if prefer_onnx else "sklearn")
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == [*rows.columns, "prediction", "proba_no", "proba_yes"]
    np.testing.assert_array_equal(out["prediction"].to_numpy(), churn_model.predict(rows))
    np.testing.assert_allclose(out[["proba_no", "proba_yes"]].to_numpy(), churn_model.predict_proba(rows), atol=1e-4)
    pd.testing.assert_frame_equal(out[rows.columns], rows)


def test_lake_to_lake_with_lineage_and_csv_input(ws, version, churn_model, tmp_path):
    from mlops_desktop.data import catalog
    from mlops_desktop.data.ingest import ingest

    frame = churn_frame(3000, seed=3)
    frame.to_csv(tmp_path / "new.csv", index=False)
    ingest(ws, [str(tmp_path / "new.csv")], "customers")
    result = predict_batch(ws, "churn", dataset="customers", keep=["tenure"], batch_rows=700)
    assert result.output == "scores_churn@1" and result.rows == 3000
    scored = catalog.resolve(ws.db, "scores_churn")
    assert scored.parents == ["customers@1"] and scored.source["model"] == "churn/1"
    from mlops_desktop.data.lake import open_dataset

    out = open_dataset(ws, "scores_churn", "pandas")
    assert list(out.columns) == ["tenure", "prediction", "proba_no", "proba_yes"]
    np.testing.assert_array_equal(out["prediction"].to_numpy(), churn_model.predict(frame.drop(columns=["churned"])))
    csv = predict_batch(ws, "churn/1", input_path=str(tmp_path / "new.csv"), output=str(tmp_path / "o.parquet"))
    assert csv.rows == 3000
    np.testing.assert_array_equal(pd.read_parquet(tmp_path / "o.parquet")["prediction"].to_numpy(),
                                  out["prediction"].to_numpy())


def test_bad_inputs_leave_nothing_behind(ws, version, tmp_path):
    pd.DataFrame({"tenure": [1.0]}).to_parquet(tmp_path / "short.parquet")
    with pytest.raises(UsageError, match="lacks the model's input column"):
        predict_batch(ws, "churn/1", input_path=str(tmp_path / "short.parquet"), output=str(tmp_path / "o.parquet"))
    with pytest.raises(UsageError, match="name it .parquet"):
        predict_batch(ws, "churn/1", input_path=str(tmp_path / "short.parquet"), output=str(tmp_path / "o.csv"))
    (tmp_path / "bad.csv").write_text("tenure,spend,plan,calls\n1.0,2.0,basic,many\n")
    with pytest.raises(UsageError, match="bad.csv"):
        predict_batch(ws, "churn/1", input_path=str(tmp_path / "bad.csv"), into_dataset="scores")
    assert not (tmp_path / "o.parquet").exists() and not list(tmp_path.glob("*.partial"))
    from mlops_desktop.data import catalog

    assert catalog.latest(ws.db, "scores") is None
