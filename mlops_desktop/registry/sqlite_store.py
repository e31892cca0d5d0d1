"""The registry's tables: registered models, versions, aliases, lineage; every change writes its audit event in the
same transaction (kinds model.created, model.version.created, model.alias.set|moved|removed|rollback)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_desktop import audit
from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.registry.entities import AliasChange, ModelVersion, RegisteredModel
from mlops_desktop.registry.names import check_alias, check_model_name, parse_ref
from mlops_desktop.registry.signature import Signature

DEFAULT_PROTECTED_ALIASES = ("production", "prod", "champion")
ALIAS_KINDS = ("model.alias.set", "model.alias.moved", "model.alias.removed", "model.alias.rollback")
_V_COLUMNS = ("v.id, m.name, v.version, v.bundle_hash, v.flavor, v.serving_path, v.signature, v.run_uuid, "
              "v.artifact_path, v.source, v.description, v.tags, v.created_by, v.created_at")
_V_FROM = "FROM model_versions v JOIN registered_models m ON m.id = v.model_id"


def subject(name: str) -> str:
    return f"model:{name}"


@dataclass(frozen=True)
class NewVersion:
    """What registration hands to the store once the bundle is sealed."""

    name: str
    bundle_hash: str
    flavor: str
    serving_path: str
    signature: Signature
    run_uuid: str | None
    artifact_path: str
    source: str
    description: str = ""
    tags: Mapping[str, str] | None = None
    metrics: Mapping[str, float | None] | None = None
    inputs: tuple[dict[str, str], ...] = ()


class RegistryStore:
    """Registry reads and writes over the workspace database (`ws.db`)."""

    def __init__(self, db: Any, protected_aliases: tuple[str, ...] = DEFAULT_PROTECTED_ALIASES) -> None:
        self.db = db
        self.protected_aliases = tuple(protected_aliases)

    # ---------------------------------------------------------------------------------------------- models
    def _model_id(self, conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT id FROM registered_models WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no registered model named {name!r}",
                                hint="see `mlops-desktop models list`; register one with `models register RUN "
                                     "--name NAME`")
        return int(row[0])

    def list_models(self) -> list[RegisteredModel]:
        rows = self.db.query(
            "SELECT m.id, m.name, m.description, m.tags, m.created_by, m.created_at, count(v.id), max(v.version), "
            "max(coalesce(v.created_at, m.created_at)) FROM registered_models m "
            "LEFT JOIN model_versions v ON v.model_id = m.id GROUP BY m.id ORDER BY m.name")
        aliases: dict[int, dict[str, int]] = {}
        for model_id, alias, version in self.db.query(
                "SELECT a.model_id, a.alias, v.version FROM model_aliases a JOIN model_versions v "
                "ON v.id = a.version_id ORDER BY a.alias"):
            aliases.setdefault(model_id, {})[alias] = version
        return [RegisteredModel(name, desc, json.loads(tags), by, at, count, latest, aliases.get(mid, {}),
                                updated or at) for mid, name, desc, tags, by, at, count, latest, updated in rows]

    def create_model(self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None,
                     actor: str | None = None) -> RegisteredModel:
        """A registered model with no version yet (versions normally create their model on first use)."""
        name = check_model_name(name)
        actor = actor or audit.current_actor()

        def tx(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM registered_models WHERE name = ?", (name,)).fetchone():
                raise UsageError(f"a registered model named {name!r} already exists",
                                 hint="register a new version of it instead")
            now = time.time()
            conn.execute("INSERT INTO registered_models(name, description, tags, created_by, created_at) "
                         "VALUES (?,?,?,?,?)", (name, description, json.dumps(dict(tags or {})), actor, now))
            audit.append(conn, "model.created", subject(name), reason="", actor=actor, ts=now)

        self.db.write(tx)
        return self.get_model(name)

    def get_model(self, name: str) -> RegisteredModel:
        check_model_name(name)
        for model in self.list_models():
            if model.name == name:
                return model
        self._model_id(self.db.connect(), name)  # raises NotFoundError
        raise AssertionError("unreachable")

    # ---------------------------------------------------------------------------------------------- versions
    def _versions(self, where: str, params: tuple) -> list[ModelVersion]:
        rows = self.db.query(f"SELECT {_V_COLUMNS} {_V_FROM} WHERE {where} ORDER BY m.name, v.version", params)
        if not rows:
            return []
        ids = [r[0] for r in rows]
        marks = ",".join("?" * len(ids))
        aliases: dict[int, list[str]] = {}
        for vid, alias in self.db.query(f"SELECT version_id, alias FROM model_aliases WHERE version_id IN ({marks}) "
                                        "ORDER BY alias", tuple(ids)):
            aliases.setdefault(vid, []).append(alias)
        metrics: dict[int, dict[str, float | None]] = {}
        for vid, key, value in self.db.query(f"SELECT version_id, key, value FROM model_version_metrics "
                                             f"WHERE version_id IN ({marks}) ORDER BY key", tuple(ids)):
            metrics.setdefault(vid, {})[key] = value
        inputs: dict[int, list[dict[str, str]]] = {}
        for vid, ds, dv, digest, ctx in self.db.query(
                f"SELECT version_id, dataset, dataset_version, digest, context FROM model_version_inputs "
                f"WHERE version_id IN ({marks}) ORDER BY dataset", tuple(ids)):
            inputs.setdefault(vid, []).append({"dataset": ds, "version": dv, "digest": digest, "context": ctx})
        return [ModelVersion(name=r[1], version=r[2], bundle_hash=r[3], flavor=r[4], serving_path=r[5],
                             signature=Signature.from_dict(json.loads(r[6])), run_uuid=r[7], artifact_path=r[8],
                             source=r[9], description=r[10], tags=json.loads(r[11]), created_by=r[12],
                             created_at=r[13], aliases=tuple(aliases.get(r[0], [])), metrics=metrics.get(r[0], {}),
                             inputs=tuple(inputs.get(r[0], [])), id=r[0]) for r in rows]

    def list_versions(self, name: str) -> list[ModelVersion]:
        check_model_name(name)
        self._model_id(self.db.connect(), name)
        return self._versions("m.name = ?", (name,))

    def get_version(self, name: str, version: int) -> ModelVersion:
        found = self._versions("m.name = ? AND v.version = ?", (name, int(version)))
        if not found:
            versions = [v.version for v in self.list_versions(name)]  # NotFoundError if the model is unknown
            raise NotFoundError(f"model {name} has no version {version}",
                                hint="versions: " + (", ".join(map(str, versions)) or "none yet"))
        return found[0]

    def find_version(self, name: str, *, run_uuid: str | None = None, artifact_path: str | None = None,
                     bundle_hash: str | None = None, source: str | None = None) -> ModelVersion | None:
        """An existing version of `name` made from this run's artifact, this bundle or this source (idempotency)."""
        clauses, params = ["m.name = ?"], [name]
        if bundle_hash is not None:
            clauses.append("v.bundle_hash = ?")
            params.append(bundle_hash)
        if source is not None:
            clauses.append("v.source = ?")
            params.append(source)
        if run_uuid is not None:
            clauses += ["v.run_uuid = ?", "v.artifact_path = ?"]
            params += [run_uuid, artifact_path or ""]
        found = self._versions(" AND ".join(clauses), tuple(params))
        return found[0] if found else None

    def resolve(self, ref: str) -> ModelVersion:
        """'NAME@ALIAS', 'NAME/VERSION' or 'NAME' (its latest version) -> the version."""
        parsed = parse_ref(ref)
        if parsed.version is not None:
            return self.get_version(parsed.name, parsed.version)
        conn = self.db.connect()
        model_id = self._model_id(conn, parsed.name)
        if parsed.alias is not None:
            row = conn.execute("SELECT v.version FROM model_aliases a JOIN model_versions v ON v.id = a.version_id "
                               "WHERE a.model_id = ? AND a.alias = ?", (model_id, parsed.alias)).fetchone()
            if row is None:
                known = [r[0] for r in conn.execute("SELECT alias FROM model_aliases WHERE model_id = ? "
                                                    "ORDER BY alias", (model_id,))]
                raise NotFoundError(f"model {parsed.name} has no alias {parsed.alias!r}",
                                    hint="aliases: " + (", ".join(known) or "none yet; set one with "
                                                        "`models alias set NAME ALIAS VERSION`"))
            return self.get_version(parsed.name, int(row[0]))
        row = conn.execute("SELECT max(version) FROM model_versions WHERE model_id = ?", (model_id,)).fetchone()
        if row[0] is None:
            raise NotFoundError(f"model {parsed.name} has no versions yet")
        return self.get_version(parsed.name, int(row[0]))

    def create_version(self, new: NewVersion, *, actor: str | None = None) -> ModelVersion:
        """Insert the version (and the model, the first time), its metrics and inputs, and the events: one tx."""
        name = check_model_name(new.name)
        actor = actor or audit.current_actor()

        def tx(conn: sqlite3.Connection) -> int:
            now = time.time()
            row = conn.execute("SELECT id FROM registered_models WHERE name = ?", (name,)).fetchone()
            if row is None:
                model_id = int(conn.execute("INSERT INTO registered_models(name, created_by, created_at) "
                                            "VALUES (?,?,?)", (name, actor, now)).lastrowid or 0)
                audit.append(conn, "model.created", subject(name), reason="", actor=actor, ts=now)
            else:
                model_id = int(row[0])
            number = int(conn.execute("SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model_id = ?",
                                      (model_id,)).fetchone()[0])
            vid = int(conn.execute(
                "INSERT INTO model_versions(model_id, version, bundle_hash, flavor, serving_path, signature, "
                "run_uuid, artifact_path, source, description, tags, created_by, created_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (model_id, number, new.bundle_hash, new.flavor, new.serving_path, json.dumps(new.signature.to_dict()),
                 new.run_uuid, new.artifact_path, new.source, new.description, json.dumps(dict(new.tags or {})),
                 actor, now)).lastrowid or 0)
            conn.executemany("INSERT INTO model_version_metrics(version_id, key, value) VALUES (?,?,?)",
                             [(vid, k, v) for k, v in (new.metrics or {}).items()])
            conn.executemany("INSERT OR IGNORE INTO model_version_inputs(version_id, dataset, dataset_version, "
                             "digest, context) VALUES (?,?,?,?,?)",
                             [(vid, i["dataset"], str(i["version"]), i.get("digest", ""), i.get("context", ""))
                              for i in new.inputs])
            audit.append(conn, "model.version.created", subject(name), to_value=number, actor=actor, ts=now,
                         details={"bundle_hash": new.bundle_hash, "flavor": new.flavor, "run": new.run_uuid,
                                  "artifact": new.artifact_path, "source": new.source})
            return number

        number = self.db.write(tx)
        return self.get_version(name, number)

    def update_version(self, name: str, version: int, *, description: str | None = None,
                       tags: Mapping[str, str] | None = None, actor: str | None = None) -> ModelVersion:
        """Description and tags are the only mutable parts of a version (its bundle never changes)."""
        current = self.get_version(name, version)

        def tx(conn: sqlite3.Connection) -> None:
            if description is not None:
                conn.execute("UPDATE model_versions SET description = ? WHERE id = ?", (description, current.id))
            if tags is not None:
                merged = {**current.tags, **{k: v for k, v in tags.items() if v is not None}}
                conn.execute("UPDATE model_versions SET tags = ? WHERE id = ?", (json.dumps(merged), current.id))
            audit.append(conn, "model.version.updated", subject(name), to_value=version, actor=actor,
                         details={"description": description, "tags": dict(tags or {})})

        self.db.write(tx)
        return self.get_version(name, version)

    # ---------------------------------------------------------------------------------------------- aliases
    def is_protected(self, alias: str) -> bool:
        return alias in self.protected_aliases

    def set_alias(self, name: str, alias: str, version: int, *, reason: str = "", actor: str | None = None,
                  kind: str | None = None, ts: float | None = None) -> AliasChange:
        """Point `alias` at `version` (created or moved); a reason is required for protected aliases."""
        check_model_name(name)
        check_alias(alias)
        reason = (reason or "").strip()
        target = self.get_version(name, version)

        def tx(conn: sqlite3.Connection) -> AliasChange:
            model_id = self._model_id(conn, name)
            row = conn.execute("SELECT v.version FROM model_aliases a JOIN model_versions v ON v.id = a.version_id "
                               "WHERE a.model_id = ? AND a.alias = ?", (model_id, alias)).fetchone()
            previous = int(row[0]) if row else None
            if previous == target.version:
                raise UsageError(f"{name}@{alias} already points at version {target.version}")
            if not reason and self.is_protected(alias) and previous is not None:
                raise UsageError(f"moving {name}@{alias} from version {previous} to {target.version} needs a reason",
                                 hint=f"{alias!r} is a protected alias; pass --reason \"why\"")
            if not reason and self.is_protected(alias):
                raise UsageError(f"setting {name}@{alias} needs a reason",
                                 hint=f"{alias!r} is a protected alias; pass --reason \"why\"")
            now = time.time() if ts is None else ts
            event_kind = kind or ("model.alias.set" if previous is None else "model.alias.moved")
            conn.execute("INSERT INTO model_aliases(model_id, alias, version_id, updated_by, updated_at) "
                         "VALUES (?,?,?,?,?) ON CONFLICT(model_id, alias) DO UPDATE SET "
                         "version_id = excluded.version_id, updated_by = excluded.updated_by, "
                         "updated_at = excluded.updated_at",
                         (model_id, alias, target.id, actor or audit.current_actor(), now))
            event = audit.append(conn, event_kind, subject(name), from_value=previous, to_value=target.version,
                                 reason=reason, actor=actor, ts=now, details={"alias": alias})
            return _change(event)

        return self.db.write(tx)

    def remove_alias(self, name: str, alias: str, *, reason: str = "", actor: str | None = None) -> AliasChange:
        check_model_name(name)
        check_alias(alias)
        reason = (reason or "").strip()

        def tx(conn: sqlite3.Connection) -> AliasChange:
            model_id = self._model_id(conn, name)
            row = conn.execute("SELECT v.version FROM model_aliases a JOIN model_versions v ON v.id = a.version_id "
                               "WHERE a.model_id = ? AND a.alias = ?", (model_id, alias)).fetchone()
            if row is None:
                raise NotFoundError(f"model {name} has no alias {alias!r}")
            if not reason and self.is_protected(alias):
                raise UsageError(f"removing {name}@{alias} needs a reason",
                                 hint=f"{alias!r} is a protected alias; pass --reason \"why\"")
            conn.execute("DELETE FROM model_aliases WHERE model_id = ? AND alias = ?", (model_id, alias))
            event = audit.append(conn, "model.alias.removed", subject(name), from_value=int(row[0]), reason=reason,
                                 actor=actor, details={"alias": alias})
            return _change(event)

        return self.db.write(tx)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """Every change of the model's aliases (or of one alias), oldest first, from the audit log."""
        check_model_name(name)
        if alias is not None:
            check_alias(alias)
        self._model_id(self.db.connect(), name)
        changes = [_change(e) for e in audit.events(self.db, subject=subject(name), kind_prefix="model.alias.")]
        return [c for c in changes if alias is None or c.alias == alias]

    def alias_at(self, name: str, alias: str, when: float) -> int | None:
        """Which version `alias` pointed at, at time `when` (None: it pointed at nothing then)."""
        check_alias(alias)
        self._model_id(self.db.connect(), name)
        rows = self.db.query(
            "SELECT kind, to_value FROM audit_events WHERE subject = ? AND substr(kind, 1, 12) = 'model.alias.' "
            "AND json_extract(details, '$.alias') = ? AND ts <= ? ORDER BY id DESC LIMIT 1",
            (subject(name), alias, float(when)))
        if not rows or rows[0][0] == "model.alias.removed" or rows[0][1] is None:
            return None
        return int(rows[0][1])

    def rollback(self, name: str, alias: str, *, reason: str, actor: str | None = None) -> AliasChange:
        """Move `alias` back to the version it pointed at before its current one, recorded as a rollback."""
        reason = (reason or "").strip()
        if not reason:
            raise UsageError(f"rolling back {name}@{alias} needs a reason", hint="pass --reason \"why\"")
        history = self.alias_history(name, alias)
        if not history or history[-1].kind == "removed":
            raise NotFoundError(f"model {name} has no alias {alias!r} to roll back")
        current = history[-1].to_version
        previous = _previous_target(history)
        if previous is None:
            raise UsageError(f"{name}@{alias} has pointed only at version {current}; there is nothing to roll back to")
        return self.set_alias(name, alias, previous, reason=reason, actor=actor, kind="model.alias.rollback")

    # ---------------------------------------------------------------------------------------------- lineage
    def versions_for_dataset(self, dataset: str, version: str | None = None) -> list[ModelVersion]:
        """Model versions trained on a dataset (any of its versions, or one): lineage from data to models."""
        where = "v.id IN (SELECT version_id FROM model_version_inputs WHERE dataset = ?" + \
            (" AND dataset_version = ?)" if version is not None else ")")
        return self._versions(where, (dataset, str(version)) if version is not None else (dataset,))

    def versions_for_run(self, run_uuid: str) -> list[ModelVersion]:
        return self._versions("v.run_uuid = ?", (run_uuid,))


def _change(event: audit.AuditEvent) -> AliasChange:
    return AliasChange(event.id, event.ts, event.actor, event.kind.rsplit(".", 1)[-1], str(event.details.get("alias")),
                       None if event.from_value is None else int(event.from_value),
                       None if event.to_value is None else int(event.to_value), event.reason)


def _previous_target(history: list[AliasChange]) -> int | None:
    """The version the alias pointed at before its current target (a rollback of a rollback goes further back)."""
    # Walk back through the targets it had, skipping the current one and any that a later rollback undid.
    targets = [c.to_version for c in history if c.to_version is not None]
    current = targets[-1] if targets else None
    stack: list[int] = []
    for change in history:
        if change.kind == "removed" or change.to_version is None:
            continue
        if change.kind == "rollback":
            while stack and stack[-1] != change.to_version:
                stack.pop()
            if not stack:
                stack.append(change.to_version)
        else:
            stack.append(change.to_version)
    while stack and stack[-1] == current:
        stack.pop()
    return stack[-1] if stack else None
