"""The deploy records without an engine: targets checked in words, the revision history append-only, actions on
missing deployments, targets or models refused plainly, and every change in the audit log."""

from __future__ import annotations

import json
import sqlite3

import pytest

from mlops_desktop.audit import log as audit
from mlops_desktop.deploy import DeploymentService
from mlops_desktop.deploy.images import GivenImages
from mlops_desktop.deploy.models import DeploymentSpec, Revision, RouterPlan
from mlops_desktop.errors import NotFoundError, UsageError


@pytest.fixture
def svc(ws):
    return DeploymentService(ws, images=GivenImages(default="registry.invalid/none:1"))


KUBECONFIG = """apiVersion: v1
kind: Config
current-context: admin@cluster
clusters: [{name: cluster, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: admin, user: {token: x}}]
contexts:
- {name: admin@cluster, context: {cluster: cluster, user: admin, namespace: team-a}}
- {name: plain, context: {cluster: cluster, user: admin}}
"""


def test_targets_are_added_checked_listed_and_removed(svc, ws, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    kube = {"kubeconfig": str(kubeconfig)}
    svc.add_target("here", "local")
    svc.add_target("swarm1", "swarm", address="unix:///var/run/x.sock")
    svc.add_target("k8s", "kubernetes", context="admin@cluster", namespace="models", options=kube)
    assert svc.add_target("k-current", "kubernetes", options=kube).namespace == "team-a"  # the context's own
    assert svc.add_target("k-plain", "kubernetes", context="plain", options=kube).namespace == "default"
    with pytest.raises(UsageError, match="has no context 'elsewhere'"):
        svc.add_target("k-bad", "kubernetes", context="elsewhere", options=kube)
    with pytest.raises(UsageError, match="no kubeconfig at"):
        svc.add_target("k-none", "kubernetes", options={"kubeconfig": str(tmp_path / "missing")})
    svc.remove_target("k-current")
    svc.remove_target("k-plain")
    assert [t.name for t in svc.targets()] == ["here", "k8s", "swarm1"]
    sw = svc.target("swarm1")
    assert sw.options == {"endpoint_mode": "dnsrr", "publish_mode": "host"}
    assert svc.target("k8s").namespace == "models"
    with pytest.raises(UsageError, match="exists already"):
        svc.add_target("here", "local")
    with pytest.raises(UsageError, match="DOCKER_HOST"):
        svc.add_target("s2", "swarm")
    with pytest.raises(UsageError, match="invalid Docker host"):
        svc.add_target("s3", "swarm", address="tcp://h:1; rm -rf /")
    with pytest.raises(UsageError, match="unknown option"):
        svc.add_target("s4", "swarm", address="unix:///x.sock", options={"privileged": True})
    with pytest.raises(UsageError, match="endpoint_mode"):
        svc.add_target("s5", "swarm", address="unix:///x.sock", options={"endpoint_mode": "ipvs"})
    with pytest.raises(UsageError, match="target name"):
        svc.add_target("Bad Name", "local")
    with pytest.raises(UsageError, match="kind"):
        svc.add_target("x", "nomad")
    with pytest.raises(UsageError, match="namespace"):
        svc.add_target("k2", "kubernetes", namespace="Bad_NS")
    svc.remove_target("here")
    with pytest.raises(NotFoundError):
        svc.target("here")
    kinds = [e.kind for e in audit.events(ws.db, kind_prefix="deploy.target")]
    assert kinds == ["deploy.target.add"] * 5 + ["deploy.target.remove"] * 3


def test_actions_on_missing_things_are_refused_plainly(svc, churn_versions):
    with pytest.raises(NotFoundError, match="no deployment named 'nope'"):
        svc.status("nope")
    with pytest.raises(NotFoundError, match="no deploy target named 'nowhere'"):
        svc.create("api", "nowhere", "churn/1")
    svc.add_target("here", "local")
    with pytest.raises(NotFoundError):
        svc.create("api", "here", "churn/9")
    with pytest.raises(NotFoundError):
        svc.create("api", "here", "nomodel/1")
    with pytest.raises(UsageError, match="deployment name"):
        svc.create("api;reboot", "here", "churn/1")
    with pytest.raises(UsageError, match="model reference"):
        svc.create("api", "here", "churn /1")
    with pytest.raises(UsageError, match="replica"):
        svc.create("api", "here", "churn/1", replicas=-1)
    with pytest.raises(UsageError, match="reserved"):
        svc.create("api", "here", "churn/1", env={"MLOPS_ADMIN_TOKEN": "x"})
    assert svc.deployments() == []


def test_the_revision_history_is_append_only(svc, ws, churn_versions):
    svc.add_target("here", "local")
    spec = DeploymentSpec(name="api", target="here", model_ref="churn/1", model="churn", version=1)
    with ws.db.transaction() as conn:
        dep_id = svc.store.insert_deployment(conn, spec, "tester")
        svc.store.insert_revision(conn, dep_id, Revision("api", 1, "churn", 1, "img:1", "tester", 1.0, "first",
                                                         "pending", spec=spec,
                                                         router=RouterPlan(arms=(), stable="v1")))
        svc.store.finish_revision(conn, "api", 1, "healthy", "1/1 replicas ready")
        svc.store.set_current(conn, "api", spec, None, 1)
    rev = svc.history("api")[0]
    assert rev.outcome == "healthy" and rev.finished_at and rev.spec == spec and rev.router.stable == "v1"
    conn = ws.db.connect()
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM deploy_revisions")
    with pytest.raises(sqlite3.IntegrityError, match="cannot change"):
        conn.execute("UPDATE deploy_revisions SET image = 'evil:1'")
    with pytest.raises(sqlite3.IntegrityError, match="cannot change"):
        conn.execute("UPDATE deploy_revisions SET spec = '{}'")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE deploy_revisions SET outcome = 'great'")
    # the deployment row goes, its history stays readable by name
    with ws.db.transaction() as c:
        svc.store.delete_deployment(c, "api")
    row = ws.db.query("SELECT deployment_id, deployment_name, number, spec FROM deploy_revisions")[0]
    assert row[0] is None and row[1] == "api" and json.loads(row[3])["model"] == "churn"


def test_flag_alerting_and_the_last_stable_revision(svc, ws, churn_versions):
    svc.add_target("here", "local")
    spec = DeploymentSpec(name="api", target="here", model_ref="churn/1", model="churn", version=1)
    with ws.db.transaction() as conn:
        dep_id = svc.store.insert_deployment(conn, spec, "tester")
        for n, (version, outcome) in enumerate([(1, "healthy"), (2, "healthy"), (3, "rolled_back"),
                                                (3, "healthy")], start=1):
            s = spec.with_(version=version, model_ref=f"churn/{version}")
            svc.store.insert_revision(conn, dep_id, Revision("api", n, "churn", version, f"img:{version}", "t",
                                                             float(n), "", "pending", spec=s))
            svc.store.finish_revision(conn, "api", n, outcome, "")
        svc.store.set_current(conn, "api", spec.with_(version=3), None, 4)
    assert svc.last_stable("api").number == 2
    svc.flag_alerting("api", 2, "alert-17")
    assert svc.last_stable("api").number == 1
    assert svc.history("api")[1].alerting == "alert-17"
    with pytest.raises(UsageError):
        svc.flag_alerting("api", 99, "alert-1")
    with pytest.raises(UsageError):
        svc.flag_alerting("api", 1, "")
    ev = audit.events(ws.db, kind="deploy.alerting")
    assert len(ev) == 1 and ev[0].subject == "deployment:api" and ev[0].details["alert"] == "alert-17"


def test_one_action_at_a_time_per_deployment(svc, ws, churn_versions):
    from mlops_desktop.errors import MlopsError

    svc.add_target("here", "local")
    spec = DeploymentSpec(name="api", target="here", model_ref="churn/1", model="churn", version=1)
    with ws.db.transaction() as conn:
        svc.store.insert_deployment(conn, spec, "tester")
    with svc.exclusive("api"):
        with pytest.raises(MlopsError, match=r"another action on deployment 'api' is running \(pid \d+"):
            svc.update("api", "churn/2")
        with pytest.raises(MlopsError, match="another action"):
            svc.scale("api", 2)
        with svc.exclusive("other"):  # other deployments are not held up
            pass
    assert svc.history("api") == []  # the refused update recorded nothing
