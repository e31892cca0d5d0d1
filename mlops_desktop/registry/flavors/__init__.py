"""Flavors: how each kind of model (scikit-learn, PyTorch, ONNX, python) is saved into a bundle and loaded back."""
