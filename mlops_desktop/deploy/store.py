"""Rows <-> entities for targets, deployments, revisions and rollout events (SQLite; the service calls these)."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from mlops_desktop.deploy.models import (
    Deployment,
    DeploymentSpec,
    Revision,
    RouterPlan,
    Target,
    TargetCheck,
)
from mlops_desktop.errors import NotFoundError, UsageError

_T_COLS = "name, kind, address, context, namespace, options, created_at, created_by"
_D_COLS = "id, name, target, spec, router, current_revision, state, reason, created_at, created_by, updated_at"
_R_COLS = ("deployment_name, number, model, version, image, actor, at, reason, outcome, detail, alerting, action, "
           "spec, router, finished_at, rolled_back_to")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _target(row: tuple) -> Target:
    return Target(row[0], row[1], row[2], row[3], row[4], json.loads(row[5] or "{}"), float(row[6]), row[7])


def _deployment(row: tuple, rev: Revision | None) -> Deployment:
    spec = DeploymentSpec.from_dict(json.loads(row[3]))
    return Deployment(name=row[1], target=row[2], spec=spec, current_revision=int(row[5]), state=row[6],
                      reason=row[7], router=RouterPlan.from_dict(json.loads(row[4]) if row[4] else None),
                      created_at=float(row[8]), created_by=row[9], updated_at=float(row[10]),
                      model=rev.model if rev else spec.model, version=rev.version if rev else spec.version,
                      image=rev.image if rev else "")


def _revision(row: tuple) -> Revision:
    return Revision(deployment=row[0], number=int(row[1]), model=row[2], version=int(row[3]), image=row[4],
                    actor=row[5], at=float(row[6]), reason=row[7], outcome=row[8], detail=row[9], alerting=row[10],
                    action=row[11], spec=DeploymentSpec.from_dict(json.loads(row[12])),
                    router=RouterPlan.from_dict(json.loads(row[13]) if row[13] else None),
                    finished_at=None if row[14] is None else float(row[14]),
                    rolled_back_to=None if row[15] is None else int(row[15]))


class DeployStore:
    """The deploy tables of one workspace database (`ws.db`)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    # -- targets -----------------------------------------------------------------------------------------------
    def insert_target(self, conn: sqlite3.Connection, target: Target) -> None:
        try:
            conn.execute(f"INSERT INTO deploy_targets({_T_COLS}) VALUES (?,?,?,?,?,?,?,?)",
                         (target.name, target.kind, target.address, target.context, target.namespace,
                          _json(target.options), target.created_at, target.created_by))
        except sqlite3.IntegrityError:
            raise UsageError(f"a target named {target.name!r} exists already",
                             hint="`targets list`; remove it first to change it") from None

    def target(self, name: str) -> Target:
        rows = self.db.query(f"SELECT {_T_COLS} FROM deploy_targets WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(f"no deploy target named {name!r}", hint="`targets list`; add one with `targets add`")
        return _target(rows[0])

    def targets(self) -> list[Target]:
        return [_target(r) for r in self.db.query(f"SELECT {_T_COLS} FROM deploy_targets ORDER BY name")]

    def save_check(self, check: TargetCheck) -> None:
        with self.db.transaction() as conn:
            conn.execute("UPDATE deploy_targets SET last_check = ?, checked_at = ? WHERE name = ?",
                         (_json(check.to_dict()), check.checked_at, check.target))

    def last_check(self, name: str) -> TargetCheck | None:
        rows = self.db.query("SELECT last_check FROM deploy_targets WHERE name = ?", (name,))
        if not rows or not rows[0][0]:
            return None
        doc = json.loads(rows[0][0])
        doc["nodes"] = tuple(doc.get("nodes") or ())
        return TargetCheck(**doc)

    def delete_target(self, conn: sqlite3.Connection, name: str) -> None:
        used = conn.execute("SELECT name FROM deployments WHERE target = ? ORDER BY name", (name,)).fetchall()
        if used:
            raise UsageError(f"target {name!r} still has deployments: {', '.join(r[0] for r in used)}",
                             hint="delete them first (`deploy delete NAME`)")
        if conn.execute("DELETE FROM deploy_targets WHERE name = ?", (name,)).rowcount == 0:
            raise NotFoundError(f"no deploy target named {name!r}")

    # -- deployments -------------------------------------------------------------------------------------------
    def _row(self, name: str, conn: sqlite3.Connection | None = None) -> tuple | None:
        sql = f"SELECT {_D_COLS} FROM deployments WHERE name = ?"
        rows = (conn.execute(sql, (name,)).fetchall() if conn is not None else self.db.query(sql, (name,)))
        return rows[0] if rows else None

    def deployment_id(self, conn: sqlite3.Connection, name: str) -> int:
        row = self._row(name, conn)
        if row is None:
            raise NotFoundError(f"no deployment named {name!r}", hint="`deploy list`")
        return int(row[0])

    def exists(self, name: str) -> bool:
        return self._row(name) is not None

    def deployment(self, name: str) -> Deployment:
        row = self._row(name)
        if row is None:
            raise NotFoundError(f"no deployment named {name!r}", hint="`deploy list`")
        rev = self.revision(name, int(row[5])) if int(row[5]) else None
        return _deployment(row, rev)

    def deployments(self) -> list[Deployment]:
        out = []
        for row in self.db.query(f"SELECT {_D_COLS} FROM deployments ORDER BY name"):
            rev = self.revision(row[1], int(row[5])) if int(row[5]) else None
            out.append(_deployment(row, rev))
        return out

    def insert_deployment(self, conn: sqlite3.Connection, spec: DeploymentSpec, actor: str) -> int:
        now = time.time()
        try:
            cur = conn.execute("INSERT INTO deployments(name, target, spec, router, current_revision, state, reason, "
                               "created_at, created_by, updated_at) VALUES (?,?,?,NULL,0,'progressing','',?,?,?)",
                               (spec.name, spec.target, _json(spec.to_dict()), now, actor, now))
        except sqlite3.IntegrityError:
            raise UsageError(f"a deployment named {spec.name!r} exists already",
                             hint="`deploy update` changes it; `deploy delete` removes it") from None
        return int(cur.lastrowid or 0)

    def set_current(self, conn: sqlite3.Connection, name: str, spec: DeploymentSpec, router: RouterPlan | None,
                    revision: int) -> None:
        conn.execute("UPDATE deployments SET spec = ?, router = ?, current_revision = ?, updated_at = ? "
                     "WHERE name = ?", (_json(spec.to_dict()), _json(router.to_dict()) if router else None,
                                        revision, time.time(), name))

    def set_state(self, name: str, state: str, reason: str = "", conn: sqlite3.Connection | None = None) -> None:
        sql = "UPDATE deployments SET state = ?, reason = ?, updated_at = ? WHERE name = ?"
        params = (state, reason, time.time(), name)
        if conn is not None:
            conn.execute(sql, params)
        else:
            with self.db.transaction() as c:
                c.execute(sql, params)

    def delete_deployment(self, conn: sqlite3.Connection, name: str) -> None:
        conn.execute("DELETE FROM deployments WHERE name = ?", (name,))

    # -- revisions ---------------------------------------------------------------------------------------------
    def next_number(self, conn: sqlite3.Connection, deployment_id: int) -> int:
        row = conn.execute("SELECT COALESCE(MAX(number), 0) FROM deploy_revisions WHERE deployment_id = ?",
                           (deployment_id,)).fetchone()
        return int(row[0]) + 1

    def insert_revision(self, conn: sqlite3.Connection, deployment_id: int, rev: Revision) -> None:
        assert rev.spec is not None
        conn.execute(
            "INSERT INTO deploy_revisions(deployment_id, deployment_name, number, action, model, version, image, spec,"
            " router, actor, at, reason, outcome, detail, alerting, finished_at, rolled_back_to) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (deployment_id, rev.deployment, rev.number, rev.action, rev.model, rev.version, rev.image,
             _json(rev.spec.to_dict()), _json(rev.router.to_dict()) if rev.router else None, rev.actor, rev.at,
             rev.reason, rev.outcome, rev.detail, rev.alerting, rev.finished_at, rev.rolled_back_to))

    def finish_revision(self, conn: sqlite3.Connection, name: str, number: int, outcome: str, detail: str,
                        *, rolled_back_to: int | None = None, final: bool = True) -> None:
        conn.execute("UPDATE deploy_revisions SET outcome = ?, detail = ?, finished_at = ?, "
                     "rolled_back_to = COALESCE(?, rolled_back_to) WHERE deployment_id = "
                     "(SELECT id FROM deployments WHERE name = ?) AND number = ?",
                     (outcome, detail, time.time() if final else None, rolled_back_to, name, number))

    def flag_alerting(self, conn: sqlite3.Connection, name: str, number: int, alert_id: str) -> int:
        return conn.execute("UPDATE deploy_revisions SET alerting = ? WHERE deployment_id = "
                            "(SELECT id FROM deployments WHERE name = ?) AND number = ?",
                            (alert_id, name, number)).rowcount

    def revision(self, name: str, number: int) -> Revision:
        rows = self.db.query(f"SELECT {_R_COLS} FROM deploy_revisions WHERE deployment_id = "
                             "(SELECT id FROM deployments WHERE name = ?) AND number = ?", (name, number))
        if not rows:
            raise NotFoundError(f"deployment {name!r} has no revision {number}", hint=f"`deploy history {name}`")
        return _revision(rows[0])

    def revisions(self, name: str) -> list[Revision]:
        return [_revision(r) for r in self.db.query(
            f"SELECT {_R_COLS} FROM deploy_revisions WHERE deployment_id = "
            "(SELECT id FROM deployments WHERE name = ?) ORDER BY number", (name,))]

    # -- events ------------------------------------------------------------------------------------------------
    def add_event(self, name: str, revision: int | None, kind: str, message: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO deploy_events(deployment_name, revision, at, kind, message) VALUES (?,?,?,?,?)",
                         (name, revision, time.time(), kind, message[:2000]))

    def events(self, name: str, *, revision: int | None = None, after: int = 0,
               limit: int = 500) -> list[dict[str, Any]]:
        sql = "SELECT id, revision, at, kind, message FROM deploy_events WHERE deployment_name = ? AND id > ?"
        params: list[Any] = [name, after]
        if revision is not None:
            sql += " AND revision = ?"
            params.append(revision)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        rows = self.db.query(sql, tuple(params))
        return [{"id": r[0], "revision": r[1], "at": r[2], "kind": r[3], "message": r[4]} for r in reversed(rows)]
