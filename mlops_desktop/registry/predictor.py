"""What every loaded model version offers the server, batch scoring, back-tests and the GUI: one `predict` call.

A flavor (scikit-learn, PyTorch, ONNX, python) loads a bundle into an object of this shape. Inputs and outputs are
columns (name -> 1-D numpy array of one length), the layout the server builds from any payload without copying
rows, and the one a Parquet batch gives; a flavor converts to what its model needs (a DataFrame, a tensor).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from mlops_desktop.registry.signature import Signature

Columns = Mapping[str, Any]  # column name -> 1-D numpy array (all of one length)


class Predictor(Protocol):
    signature: Signature
    flavor: str        # "sklearn" | "pytorch" | "onnx" | "python"
    serving_path: str  # what actually computes: "sklearn", "onnxruntime", "torch", "python"

    def predict(self, columns: Columns) -> dict[str, Any]:
        """Outputs for every input row: always "prediction"; classifiers add "probabilities" (n x classes)."""
        ...
