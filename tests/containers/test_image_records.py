"""Image records in the workspace database (0009_containers): one row per tag and engine, pushes per registry,
found by tag, digest or image id, audited, and shown by `models show`."""

from __future__ import annotations

import json

import pytest

from mlops_desktop import audit, containers
from mlops_desktop.cli.main import main
from mlops_desktop.containers import records
from mlops_desktop.errors import NotFoundError

ID1 = "sha256:" + "1" * 64
ID2 = "sha256:" + "2" * 64


def _save(ws, mv, image_id=ID1, tag="team/churn:1"):
    return records.save_build(ws.db, version_id=mv.id, model=mv.name, version=mv.version,
                              bundle_hash=mv.bundle_hash, kind="model", tag=tag, engine="unix:///x.sock",
                              image_id=image_id, base="base:1", base_id="sha256:b", deps_key="k", size_bytes=321e6,
                              build_seconds=4.5, steps=10, cached_steps=6, options={"prediction_log": True})


def test_build_push_and_lookup(ws, churn_version):
    rec = _save(ws, churn_version)
    assert (rec.model, rec.version, rec.tag, rec.digest, rec.pushed_to, rec.smoke) == \
        ("churn", 1, "team/churn:1", "", "", None)
    rec = records.save_smoke(ws.db, rec, {"passed": True, "p50_ms": 1.5, "p99_ms": 3.0, "rows": 205})
    digest = "127.0.0.1:5000/team/churn@sha256:" + "a" * 64
    rec = records.save_push(ws.db, rec, registry="127.0.0.1:5000", reference="127.0.0.1:5000/team/churn:1",
                            digest=digest)
    assert rec.digest == digest and rec.pushed_to == "127.0.0.1:5000" and rec.pull_reference == digest
    for needle in ("team/churn:1", digest, "sha256:" + "a" * 64, ID1, "1" * 12, "127.0.0.1:5000/team/churn:1"):
        assert containers.get_image(ws, needle).id == rec.id, needle
    with pytest.raises(NotFoundError, match="no image 'team/churn:9'"):
        containers.get_image(ws, "team/churn:9")
    assert [r.tag for r in containers.images_for(ws, "churn", 1)] == ["team/churn:1"]
    assert containers.images_for(ws, "churn", 2) == [] and containers.images_for(ws, "other") == []
    kinds = [e.kind for e in audit.events(ws.db, subject="model:churn/1")]
    assert {"image.built", "image.smoke", "image.pushed"} <= set(kinds)
    doc = json.loads(json.dumps(rec.to_dict()))
    assert doc["smoke"]["passed"] and doc["pushes"][0]["digest"] == digest and doc["ref"] == "churn/1"


def test_rebuilding_a_tag_replaces_its_row_and_forgets_old_pushes(ws, churn_version):
    first = _save(ws, churn_version)
    records.save_push(ws.db, first, registry="r:5000", reference="r:5000/team/churn:1",
                      digest="r:5000/team/churn@sha256:" + "b" * 64)
    second = _save(ws, churn_version, image_id=ID2)
    assert second.image_id == ID2 and second.digest == "" and second.pushes == ()
    assert [r.image_id for r in containers.list_images(ws)] == [ID2]


def test_models_show_lists_the_versions_images(ws, churn_version, capsys):
    _save(ws, churn_version)
    assert main(["models", "show", "churn/1", "--home", str(ws.root)]) == 0
    out = capsys.readouterr().out
    assert "images:" in out and "team/churn:1" in out and "321 MB" in out
    assert main(["models", "show", "churn/1", "--json", "--home", str(ws.root)]) == 0
    assert json.loads(capsys.readouterr().out)["images"][0]["tag"] == "team/churn:1"
