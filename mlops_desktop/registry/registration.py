"""Registration: a run's artifact (or files given by hand) becomes a sealed bundle and a new model version.

Steps: materialise the artifact, let its flavor check and copy it into a stage, settle the signature, input
example and environment, try the ONNX fast path (scikit-learn), seal the bundle, load it back and predict the
input example (a version that cannot predict is never created), then insert the version and its audit event.
Registering the same run artifact under the same name again returns the existing version.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from mlops_desktop.errors import MlopsError, UsageError
from mlops_desktop.registry import bundle as bundles
from mlops_desktop.registry.entities import Registration
from mlops_desktop.registry.environment import capture, modules_of_object
from mlops_desktop.registry.example import EXAMPLE_FILE, columns_from_lists, write_example
from mlops_desktop.registry.names import check_model_name
from mlops_desktop.registry.signature import ColumnSpec, Signature, from_lake_schema
from mlops_desktop.registry.sources import ModelSource, materialise_run_artifact, read_folder
from mlops_desktop.registry.sqlite_store import NewVersion, RegistryStore

SAMPLE_ROWS = 256  # held-out rows read from the training dataset when the artifact brings none


def register_run(ws: Any, store: RegistryStore, run: str, name: str, *, artifact: str | None = None,
                 flavor: str | None = None, factory: str | None = None, factory_kwargs: dict[str, Any] | None = None,
                 entrypoint: str | None = None, project_dir: Path | None = None,
                 signature: Signature | None = None, example: dict[str, list[Any]] | None = None,
                 description: str = "", tags: dict[str, str] | None = None, fast_path: bool = True,
                 actor: str | None = None) -> Registration:
    """Register a run's artifact as the next version of `name` (created on first use)."""
    check_model_name(name)
    tracking = ws.tracking
    run_uuid = tracking.resolve_run_uuid(run)
    info = tracking.get_run(run_uuid)
    if info.status == "running":
        raise UsageError(f"run {run_uuid[:8]} is still running", hint="register its model when the run has ended")
    if flavor == "python" and not entrypoint:
        raise UsageError("the python flavor needs --entrypoint module:function (a predict(columns) function)")
    with tempfile.TemporaryDirectory(prefix="mlops-register-") as tmp:
        root = Path(tmp) / "artifact"
        root.mkdir()
        model_file = None
        artifact_path = artifact or ""
        if flavor != "python" or artifact:
            artifact_path, model_file = materialise_run_artifact(tracking, run_uuid, artifact, root)
        src = read_folder(root, model_file, flavor)
        existing = store.find_version(name, run_uuid=run_uuid, artifact_path=artifact_path) \
            if _model_exists(store, name) else None
        if existing is not None:
            return Registration(existing, created=False)
        datasets = [i.to_dict() for i in tracking.list_inputs(run_uuid)]
        warnings: list[str] = []
        src.signature = signature or src.signature or _signature_from_lake(ws, datasets, info.params, warnings)
        if example is not None:
            src.example = example
        if src.example is None or src.holdout is None:
            _examples_from_lake(ws, datasets, src)
        metrics = {k: m.last for k, m in info.metrics.items()}
        return build_version(ws, store, name, src, run_uuid=run_uuid, artifact_path=artifact_path,
                             source=f"run:{run_uuid}", metrics=metrics, inputs=datasets, description=description,
                             tags=tags, fast_path=fast_path, actor=actor, factory=factory,
                             factory_kwargs=factory_kwargs, entrypoint=entrypoint, project_dir=project_dir,
                             warnings=warnings)


def _model_exists(store: RegistryStore, name: str) -> bool:
    return bool(store.db.query("SELECT 1 FROM registered_models WHERE name = ?", (name,)))


def build_version(ws: Any, store: RegistryStore, name: str, src: ModelSource, *, run_uuid: str | None,
                  artifact_path: str, source: str, metrics: dict[str, float | None] | None = None,
                  inputs: list[dict[str, str]] | None = None, description: str = "",
                  tags: dict[str, str] | None = None, fast_path: bool = True, actor: str | None = None,
                  factory: str | None = None, factory_kwargs: dict[str, Any] | None = None,
                  entrypoint: str | None = None, project_dir: Path | None = None,
                  warnings: list[str] | None = None, model: Any = None) -> Registration:
    """Seal `src` into a bundle and create the version (shared by run registration and the MLflow import)."""
    warnings = warnings if warnings is not None else []
    models_root = ws.paths.models
    stage = bundles.new_stage(models_root)
    try:
        config, model, modules = _save_flavor(stage, src, factory, factory_kwargs, entrypoint, project_dir, model)
        signature = src.signature or _signature_from_model(model, warnings)
        example_rel = None
        example_cols: dict[str, Any] | None = None
        if src.example is not None:
            example_cols = columns_from_lists(src.example, signature, source="the input example")
            write_example(stage / EXAMPLE_FILE, {"columns": {c: list(src.example[c][:5])
                                                             for c in signature.input_names}})
            example_rel = EXAMPLE_FILE
        else:
            warnings.append("no input example: the bundle cannot be tried without data")
        environment = src.environment
        if environment is None:
            environment = capture(modules) | {"recorded": "at registration"}
            warnings.append("the training environment was not recorded; package versions were read at registration")
        fast: dict[str, Any] = {}
        if src.flavor == "sklearn" and fast_path:
            from mlops_desktop.registry import fastpath

            samples = [("input example", example_cols or {})]
            if src.holdout is not None:
                samples.append(("held-out sample", columns_from_lists(src.holdout, signature,
                                                                     source="the held-out sample")))
            fast = fastpath.build(model, signature, stage, samples)
            if fast.get("status") != "verified":
                warnings.append(f"no ONNX fast path ({fast.get('status')}): {fast.get('reason', '')}")
        sealed = bundles.seal(stage, models_root, flavor=src.flavor, flavor_config=config, signature=signature,
                              environment=environment, input_example=example_rel, fast_path=fast,
                              source={"run": run_uuid, "artifact": artifact_path, "from": source})
    except BaseException:
        bundles.discard_stage(stage)
        raise
    _smoke_test(sealed, example_cols, store)
    existing = store.find_version(name, bundle_hash=sealed.hash) if _model_exists(store, name) else None
    if existing is not None:
        return Registration(existing, created=False, warnings=warnings)
    version = store.create_version(NewVersion(
        name=name, bundle_hash=sealed.hash, flavor=src.flavor,
        serving_path=bundles.expected_serving_path(sealed.manifest), signature=signature, run_uuid=run_uuid,
        artifact_path=artifact_path, source=source, description=description, tags=tags or {},
        metrics=metrics or {}, inputs=tuple(inputs or ())), actor=actor)
    return Registration(version, created=True, warnings=warnings)


def _save_flavor(stage: Path, src: ModelSource, factory: str | None, factory_kwargs: dict[str, Any] | None,
                 entrypoint: str | None, project_dir: Path | None, model: Any) -> tuple[dict[str, Any], Any, set[str]]:
    if src.flavor == "sklearn":
        from mlops_desktop.registry.flavors import sklearn as sk_flavor

        if model is not None:  # the MLflow import hands a model it already loaded (skops or an opted-in pickle)
            from mlops_desktop.registry.flavors.sklearn import skops_io

            sio = skops_io()

            path = stage.parent / f"{stage.name}.skops"
            try:
                sio.dump(model, path)
                config, model = sk_flavor.save(stage, path)
            finally:
                path.unlink(missing_ok=True)
        else:
            assert src.model_file is not None
            config, model = sk_flavor.save(stage, src.model_file)
        return config, model, modules_of_object(model) | {"sklearn", "numpy", "scipy", "skops", "pandas"}
    if src.flavor == "pytorch":
        from mlops_desktop.registry.flavors import pytorch as pt_flavor

        assert src.model_file is not None
        if src.meta.get("flavor") == "torch-mlp":
            state, config = pt_flavor.from_mlp_artifact(src.model_file, src.meta)
            config["output"]["classes"] = list(src.signature.classes) if src.signature else []
        elif factory:
            state, config = pt_flavor.from_weights_file(src.model_file, factory, factory_kwargs or {})
        else:
            raise UsageError(f"{src.model_file.name}: a PyTorch state_dict needs its architecture",
                             hint="pass --factory module:callable [--factory-kwargs JSON] that builds the nn.Module")
        config = pt_flavor.save(stage, state, config, project_dir)
        return config, None, {"torch", "numpy", "pandas", config["factory"].split(".", 1)[0]}
    if src.flavor == "onnx":
        from mlops_desktop.registry.flavors import onnx as onnx_flavor

        assert src.model_file is not None
        onnx_flavor.check_file(src.model_file)
        if src.signature is None:
            raise UsageError(f"{src.model_file.name}: an ONNX model needs a signature (signature.json or --signature)")
        return onnx_flavor.save(stage, src.model_file, src.signature), None, {"onnxruntime", "numpy"}
    from mlops_desktop.registry.flavors import python as py_flavor

    if not entrypoint:
        raise UsageError("the python flavor needs --entrypoint module:function")
    config = py_flavor.save(stage, entrypoint, project_dir)
    return config, None, {"numpy", entrypoint.split(".", 1)[0].split(":", 1)[0]}


def _smoke_test(sealed: bundles.Bundle, example: dict[str, Any] | None, store: RegistryStore) -> None:
    """Load the sealed bundle as a server would and predict the example; remove it again if that fails."""
    try:
        predictor = bundles.load_predictor_from_bundle(sealed, prefer_onnx=False)
        if example is not None:
            out = predictor.predict(example)
            rows = len(next(iter(example.values())))
            if "prediction" not in out or len(out["prediction"]) != rows:
                raise UsageError(f"the model returned {len(out.get('prediction', []))} predictions for {rows} rows")
    except Exception as exc:
        if not store.db.query("SELECT 1 FROM model_versions WHERE bundle_hash = ?", (sealed.hash,)):
            shutil.rmtree(sealed.path, ignore_errors=True)
        if isinstance(exc, MlopsError):
            raise UsageError(f"the model does not predict its input example: {exc.message}", hint=exc.hint) from None
        raise UsageError(f"the model does not predict its input example: {type(exc).__name__}: {exc}",
                         hint="check the signature's columns and types against what the model expects") from None


def _signature_from_lake(ws: Any, datasets: list[dict[str, str]], params: dict[str, str],
                         warnings: list[str]) -> Signature | None:
    """The training dataset's schema minus the target (the run's `target` param), if the run read one lake dataset."""
    from mlops_desktop.data import catalog
    from mlops_desktop.errors import NotFoundError

    training = [d for d in datasets if d.get("context") in ("training", "input", "")]
    if len(training) != 1 or "target" not in params:
        return None
    try:
        version = catalog.resolve(ws.db, f"{training[0]['dataset']}@{training[0]['version']}")
    except (NotFoundError, UsageError):
        return None
    target = params["target"]
    features = [f.strip() for f in params.get("features", "").split(",") if f.strip()]
    schema = {k: v for k, v in version.schema.items() if not features or k in features}
    warnings.append(f"signature inferred from {version.ref} (without its target column {target!r})")
    return Signature(from_lake_schema(schema, exclude=[target]))


def _examples_from_lake(ws: Any, datasets: list[dict[str, str]], src: ModelSource) -> None:
    """Input example (5 rows) and held-out sample (up to SAMPLE_ROWS) from the training dataset in the lake."""
    from mlops_desktop.data import catalog, lake
    from mlops_desktop.errors import NotFoundError

    if src.signature is None:
        return
    for d in datasets:
        try:
            version = catalog.resolve(ws.db, f"{d['dataset']}@{d['version']}")
        except (NotFoundError, UsageError):
            continue
        names = src.signature.input_names
        if not all(n in version.schema for n in names):
            continue
        frame = lake.scan(ws, version).select(names).tail(SAMPLE_ROWS).collect()
        cols = {n: frame[n].to_list() for n in names}
        if src.example is None:
            src.example = {n: v[:5] for n, v in cols.items()}
        if src.holdout is None:
            src.holdout = cols
        return


def _signature_from_model(model: Any, warnings: list[str]) -> Signature:
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise UsageError("the model's signature is unknown: the artifact has no signature.json and the run read no "
                         "single lake dataset to infer it from",
                         hint="pass --signature FILE (JSON: {\"inputs\": [{\"name\": ..., \"dtype\": ...}]})")
    warnings.append("signature taken from the model's feature names, every column as float64")
    from sklearn.base import is_classifier

    task = "classification" if is_classifier(model) else "regression"
    classes = tuple(c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", ()))
    return Signature(tuple(ColumnSpec(str(n), "float64") for n in names), task=task,
                     classes=classes if task == "classification" else ())
