"""Input contract: the candidate's signature against a pinned dataset version (its columns, types, the contract it
was ingested under, nulls) and against the champion's inputs (what callers send today)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mlops_desktop.promotion.checks.base import CheckContext, CheckResult, Keys, pinned_dataset

_INTS = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
_FLOATS = {"float32", "float64"}


def _norm(dtype: str) -> str:
    from mlops_desktop.errors import UsageError
    from mlops_desktop.registry.signature import normalise_dtype

    try:
        return normalise_dtype(dtype)
    except UsageError:
        return dtype


def compatible(model_dtype: str, data_dtype: str) -> bool:
    """Data of `data_dtype` can be fed to a model input of `model_dtype` without losing meaning."""
    m, d = _norm(model_dtype), _norm(data_dtype)
    if m == d:
        return True
    if m in _FLOATS and (d in _INTS or d in _FLOATS):
        return True
    return m in _INTS and d in _INTS and d != "uint64"


@dataclass
class ContractCheck:
    kind: ClassVar[str] = "contract"
    name: str
    dataset: str
    allow_new_inputs: bool

    @classmethod
    def from_config(cls, raw: dict[str, Any], where: str) -> ContractCheck:
        keys = Keys(raw, where, {"dataset", "allow_new_inputs"})
        return cls(name=keys.text("name", "contract") or "contract", dataset=pinned_dataset(keys),
                   allow_new_inputs=keys.boolean("allow_new_inputs", False))

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "dataset": self.dataset,
                "allow_new_inputs": self.allow_new_inputs}

    def run(self, ctx: CheckContext) -> CheckResult:
        import polars as pl

        from mlops_desktop.data import catalog, lake

        version = catalog.resolve(ctx.ws.db, self.dataset)
        sig = ctx.candidate.signature
        contract = (version.source or {}).get("contract") or {}
        rules = contract.get("columns", {}) if isinstance(contract, dict) else {}
        problems: list[str] = []
        columns: list[dict[str, Any]] = []
        present = [c.name for c in sig.inputs if c.name in version.schema]
        nulls: dict[str, int] = {}
        if present:
            counts = lake.scan(ctx.ws, version).select(pl.col(present).null_count()).collect()
            nulls = {c: int(counts[c][0]) for c in present}
        for col in sig.inputs:
            data_type = version.schema.get(col.name)
            rule = rules.get(col.name, {}) if isinstance(rules, dict) else {}
            entry: dict[str, Any] = {"column": col.name, "model": col.dtype, "data": data_type,
                                     "model_nullable": col.nullable, "nulls": nulls.get(col.name),
                                     "contract": rule or None, "ok": True}
            if data_type is None:
                problems.append(f"{col.name}: the model needs it, {version.ref} has no such column")
                entry["ok"] = False
            elif not compatible(col.dtype, data_type):
                problems.append(f"{col.name}: the model takes {col.dtype}, {version.ref} holds {data_type}")
                entry["ok"] = False
            elif not col.nullable and nulls.get(col.name):
                problems.append(f"{col.name}: the model refuses empty values, {version.ref} has "
                                f"{nulls[col.name]:,} of them")
                entry["ok"] = False
            elif not col.nullable and rule and rule.get("nullable", True):
                problems.append(f"{col.name}: the model refuses empty values, the dataset's contract allows them")
                entry["ok"] = False
            columns.append(entry)
        evidence: dict[str, Any] = {"dataset": version.ref, "columns": columns,
                                    "contract": contract or None, "task": sig.task}
        if ctx.champion is not None:
            champ = set(ctx.champion.signature.input_names)
            new = [c for c in sig.input_names if c not in champ]
            dropped = sorted(champ - set(sig.input_names))
            evidence |= {"champion_ref": ctx.champion.ref, "new_inputs": new, "dropped_inputs": dropped}
            if new and not self.allow_new_inputs:
                problems.append(f"the candidate needs input(s) {', '.join(new)} that {ctx.champion.ref} does not "
                                "take: today's callers do not send them (set allow_new_inputs = true if they will)")
            champ_out = ctx.champion.signature.outputs[0].dtype if ctx.champion.signature.outputs else None
            cand_out = sig.outputs[0].dtype if sig.outputs else None
            if champ_out and cand_out and _norm(champ_out) != _norm(cand_out):
                problems.append(f"the candidate answers {cand_out}, {ctx.champion.ref} answered {champ_out}")
            if set(map(str, ctx.champion.signature.classes)) != set(map(str, sig.classes)):
                evidence["classes"] = {"champion": list(map(str, ctx.champion.signature.classes)),
                                       "candidate": list(map(str, sig.classes))}
                if sig.task == "classification":
                    problems.append("the candidate's classes differ from the champion's: "
                                    f"{evidence['classes']['candidate']} vs {evidence['classes']['champion']}")
        evidence["problems"] = problems
        if problems:
            return CheckResult(False, "; ".join(problems), evidence)
        return CheckResult(True, f"{len(sig.inputs)} input(s) match {version.ref}"
                           + (" and the champion's" if ctx.champion is not None else ""), evidence)
