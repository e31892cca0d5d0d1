"""The SQLite tracking store: runs, params, tags, packed metric series, search, artifacts, lifecycle."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.tracking import packing


def make_run(store, exp="exp", **kw):
    e = store.get_or_create_experiment(exp)
    return store.create_run(e.id, **kw)


def test_run_fields_params_tags_round_trip(store):
    run = make_run(store, name="baseline", command="python train.py", git_commit="abc123", git_dirty=True,
                   params={"lr": 0.01, "opt": "adam", "layers": 3}, tags={"team": "vision"})
    got = store.get_run(run.uuid)
    assert got.name == "baseline" and got.status == "running" and got.git_dirty is True
    assert got.params == {"lr": "0.01", "opt": "adam", "layers": "3"}
    assert got.tags == {"team": "vision"}
    store.set_tags(run.uuid, {"team": "nlp", "stage": "dev"})
    store.delete_tag(run.uuid, "stage")
    assert store.get_run(run.uuid).tags == {"team": "nlp"}


def test_params_are_immutable_but_relogging_same_value_is_fine(store):
    run = make_run(store, params={"lr": 0.1})
    store.log_params(run.uuid, {"lr": 0.1})
    with pytest.raises(UsageError, match="'lr' was already logged as '0.1'"):
        store.log_params(run.uuid, {"lr": 0.2})
    assert store.get_run(run.uuid).params == {"lr": "0.1"}


def test_metric_series_round_trip_across_chunk_boundaries(store):
    run = make_run(store)
    n = packing.CHUNK_MAX_POINTS * 2 + 123
    steps = np.arange(n, dtype=np.int64)
    ts = 1_700_000_000_000 + steps // 7
    vals = np.sin(steps / 100.0)
    # many small appends (tail merging) then one big one
    for start in range(0, 3000, 100):
        store.log_metric_arrays(run.uuid, "loss", steps[start:start + 100], ts[start:start + 100],
                                vals[start:start + 100])
    store.log_metric_arrays(run.uuid, "loss", steps[3000:], ts[3000:], vals[3000:])
    hist = store.metric_history(run.uuid, "loss")
    np.testing.assert_array_equal(hist.steps, steps)
    np.testing.assert_array_equal(hist.timestamps_ms, ts)
    np.testing.assert_array_equal(hist.values, vals)
    summary = store.get_run(run.uuid).metrics["loss"]
    assert summary.count == n and summary.last == vals[-1] and summary.last_step == n - 1
    assert summary.min == vals.min() and summary.max == vals.max()
    chunks = store.db.query("SELECT count(*), min(n) FROM metric_chunks")[0]
    assert chunks[0] <= 5, "small appends must be merged into the tail chunk, not left as tiny chunks"


def test_irregular_steps_nan_and_out_of_order_last(store):
    run = make_run(store)
    store.log_metric_arrays(run.uuid, "m", np.array([10, 5, 20]), np.array([1, 2, 3]),
                            np.array([1.0, math.nan, 3.0]))
    store.log_metric_arrays(run.uuid, "m", np.array([15]), np.array([4]), np.array([-2.0]))
    hist = store.metric_history(run.uuid, "m")
    assert hist.steps.tolist() == [10, 5, 20, 15]
    assert math.isnan(hist.values[1])
    s = store.get_run(run.uuid).metrics["m"]
    assert (s.last, s.last_step, s.min, s.max, s.count) == (3.0, 20, -2.0, 3.0, 4)


def test_bytes_per_point_is_small(store, ws):
    run = make_run(store)
    n = 500_000
    steps = np.arange(n)
    store.log_metric_arrays(run.uuid, "loss", steps, 1_700_000_000_000 + steps // 50, np.random.default_rng(0).random(n))
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = sum(p.stat().st_size for p in ws.paths.root.glob("mlops.db*"))
    assert size / n < 10, f"{size / n:.1f} bytes per point"


def test_downsampled_history_keeps_a_single_spike(store):
    run = make_run(store)
    n = 1_000_000
    vals = np.zeros(n)
    vals[777_777] = 1e6
    vals[123_456] = -5e5
    store.log_metric_arrays(run.uuid, "loss", np.arange(n), np.zeros(n, dtype=np.int64), vals)
    ds = store.metric_history_downsampled(run.uuid, "loss", buckets=800)
    assert len(ds) <= 4 * 800 + 2
    assert ds.values.max() == 1e6 and ds.values.min() == -5e5
    assert 777_777 in ds.steps.tolist()
    zoom = store.metric_history_downsampled(run.uuid, "loss", buckets=100, x_min=700_000, x_max=800_000)
    assert zoom.steps.min() >= 699_999 and 1e6 in zoom.values.tolist()


def test_unknown_run_and_metric_are_not_found(store):
    run = make_run(store)
    with pytest.raises(NotFoundError):
        store.get_run("deadbeef" * 4)
    with pytest.raises(NotFoundError, match="no metric 'nope'"):
        store.metric_history(run.uuid, "nope")


def test_run_prefix_resolution(store):
    run = make_run(store)
    assert store.resolve_run_uuid(run.uuid[:8]) == run.uuid
    with pytest.raises(NotFoundError):
        store.resolve_run_uuid("zzzzzzzz")


@pytest.fixture
def populated(store):
    runs = []
    for i in range(30):
        r = make_run(store, "a" if i % 2 else "b", name=f"run-{i}",
                     params={"lr": 10 ** -(i % 5), "opt": "adam" if i % 3 else "sgd", "batch": 32 * (1 + i % 4)},
                     tags={"team": "x" if i < 15 else "y"}, start_time=1_700_000_000 + i)
        store.log_metric_arrays(r.uuid, "acc", np.arange(3), np.zeros(3, dtype=np.int64),
                                np.array([0.1, i / 30.0, i / 40.0]))
        if i % 4 == 0:
            store.set_terminated(r.uuid, "finished")
        runs.append(r)
    return runs


def ids(page):
    return {r.name for r in page.runs}


def expected(pred):
    """Names of the populated runs that satisfy ``pred(i, lr, opt, batch, team, last_acc, max_acc, finished)``."""
    out = set()
    for i in range(30):
        if pred(i, 10 ** -(i % 5), "adam" if i % 3 else "sgd", 32 * (1 + i % 4), "x" if i < 15 else "y",
                i / 40.0, max(0.1, i / 30.0), i % 4 == 0):
            out.add(f"run-{i}")
    return out


@pytest.mark.parametrize("query, pred", [
    ("params.lr < 0.01", lambda i, lr, *_: lr < 0.01),
    ("params.opt = 'sgd' and params.lr >= 0.1", lambda i, lr, opt, *_: opt == "sgd" and lr >= 0.1),
    ("metrics.acc > 0.5", lambda i, lr, opt, b, t, last, mx, fin: last > 0.5),
    ("metrics.acc.max > 0.5", lambda i, lr, opt, b, t, last, mx, fin: mx > 0.5),
    ("status = finished", lambda i, lr, opt, b, t, last, mx, fin: fin),
    ("tags.team = 'y' and status = 'finished'", lambda i, lr, opt, b, t, last, mx, fin: t == "y" and fin),
    ("params.batch IN (32, 64)", lambda i, lr, opt, b, *_: b in (32, 64)),
    ("name LIKE 'run-1%'", lambda i, *_: str(i).startswith("1")),
    ("(params.opt = 'sgd' or tags.team = 'y') and not status = running",
     lambda i, lr, opt, b, t, last, mx, fin: (opt == "sgd" or t == "y") and fin),
    ("params.opt != 'adam' or metrics.acc.min < 0.05", lambda i, lr, opt, b, t, last, mx, fin:
     opt != "adam" or min(0.1, i / 30.0, i / 40.0) < 0.05),
])
def test_search_filters(store, populated, query, pred):
    want = expected(pred)
    assert want, "the case must select something"
    page = store.search_runs(filter_string=query, limit=100)
    assert ids(page) == want and page.total == len(want)


def test_search_by_experiment(store, populated):
    exp_b = store.get_experiment_by_name("b")
    assert store.search_runs([exp_b.id]).total == 15


def test_search_order_and_pagination(store, populated):
    page = store.search_runs(order_by=["metrics.acc DESC"], limit=7)
    assert [r.name for r in page.runs] == [f"run-{i}" for i in range(29, 22, -1)]
    assert page.total == 30 and page.next_offset == 7
    seen = []
    offset = 0
    while offset is not None:
        p = store.search_runs(order_by=["params.lr", "name"], limit=8, offset=offset)
        seen += [r.name for r in p.runs]
        offset = p.next_offset
    assert len(seen) == 30 and len(set(seen)) == 30
    lrs = [float(store.get_run(r.uuid).params["lr"]) for r in store.search_runs(order_by=["params.lr"]).runs]
    assert lrs == sorted(lrs), "numeric params order numerically, not as text"


@pytest.mark.parametrize("bad, fragment", [
    ("params.lr <", "expected a value"),
    ("metrics.acc > 'high'", "compares with numbers"),
    ("status = done", "status must be one of"),
    ("foo = 1", "unknown field"),
    ("params.lr = 1 and", "expected a field"),
    ("params.lr = 1 xor 2", "expected AND, OR"),
    ("start_time > 'yesterday'", "ISO date"),
])
def test_bad_queries_say_where_and_why(store, bad, fragment):
    with pytest.raises(UsageError, match=fragment):
        store.search_runs(filter_string=bad)


def test_query_values_are_bound_not_spliced(store, populated):
    # an injection attempt is only a value that matches nothing
    assert store.search_runs(filter_string="name = \"x' OR 1=1 --\"").total == 0


def test_artifacts_are_content_hashed_and_deduplicated(store, ws, tmp_path):
    a = make_run(store)
    b = make_run(store)
    f = tmp_path / "model.bin"
    f.write_bytes(os.urandom(100_000))
    d = tmp_path / "outdir"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "x.txt").write_text("hello")
    store.log_artifact(a.uuid, f)
    store.log_artifact(b.uuid, f, "models")
    store.log_artifact(b.uuid, d)
    assert [x.path for x in store.list_artifacts(b.uuid)] == ["models/model.bin", "outdir/sub/x.txt"]
    blobs = [p for p in ws.paths.objects.rglob("*") if p.is_file()]
    assert len(blobs) == 2, "the same content is stored once"
    assert store.artifact_file(a.uuid, "model.bin").read_bytes() == f.read_bytes()
    with pytest.raises(UsageError, match="does not exist"):
        store.log_artifact(a.uuid, tmp_path / "missing.bin")


def test_delete_restore_purge(store, populated):
    victim = populated[0]
    store.delete_run(victim.uuid)
    assert store.search_runs().total == 29
    store.restore_run(victim.uuid)
    assert store.search_runs().total == 30
    store.delete_run(victim.uuid)
    assert store.purge_deleted() == 1
    assert store.db.query("SELECT count(*) FROM metric_chunks WHERE run_id NOT IN (SELECT id FROM runs)")[0][0] == 0
    with pytest.raises(NotFoundError):
        store.get_run(victim.uuid)


def test_parent_child_runs_and_lineage_inputs(store):
    parent = make_run(store, name="sweep")
    child = make_run(store, name="trial-1", parent_uuid=parent.uuid)
    assert store.get_run(child.uuid).parent_uuid == parent.uuid
    assert store.search_runs(filter_string=f"parent = '{parent.uuid}'").total == 1
    store.log_input(child.uuid, "churn", "3", "sha256:abc", "training")
    assert store.list_inputs(child.uuid)[0].version == "3"
    assert store.runs_reading("churn") == [child.uuid]


def test_dead_process_run_is_reaped_as_lost(store):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    run = make_run(store, pid=proc.pid)
    alive = make_run(store, pid=os.getpid())
    assert store.reap_lost_runs() == []
    proc.kill()
    proc.wait()
    assert store.reap_lost_runs() == [run.uuid]
    assert store.get_run(run.uuid).status == "lost"
    assert store.get_run(alive.uuid).status == "running"


def test_change_counter_sees_other_connections(ws, tmp_path):
    from mlops_desktop.workspace import Workspace

    other = Workspace.open(ws.root)
    try:
        before = ws.tracking.change_counter()
        assert ws.tracking.change_counter() == before
        make_run(other.tracking)
        assert ws.tracking.change_counter() != before
    finally:
        other.close()


def test_run_durations_are_real(store):
    run = make_run(store)
    time.sleep(0.05)
    store.set_terminated(run.uuid, "failed")
    got = store.get_run(run.uuid)
    assert got.status == "failed" and 0.04 < got.duration < 5


def test_tail_read_returns_exactly_the_unseen_points(store):
    run = make_run(store)
    rng = np.random.default_rng(3)
    seen_steps: list[int] = []
    logged = 0
    for size in [5, 1, 700, 2000, 1, 70_000, 3]:  # small flushes (tail merging) and chunk-splitting ones
        steps = np.arange(logged, logged + size)
        store.log_metric_arrays(run.uuid, "loss", steps, steps * 10, rng.random(size))
        logged += size
        tail = store.metric_history_tail(run.uuid, "loss", len(seen_steps))
        seen_steps += tail.steps.tolist()
        assert seen_steps == list(range(logged))
    full = store.metric_history(run.uuid, "loss")
    for start in (0, 1, 706, 2706, 72_000, logged - 1, logged, logged + 5):
        tail = store.metric_history_tail(run.uuid, "loss", start)
        np.testing.assert_array_equal(tail.values, full.values[start:])
        np.testing.assert_array_equal(tail.timestamps_ms, full.timestamps_ms[start:])


def test_a_rolled_back_transaction_leaves_no_stale_cached_ids(store):
    """Ids cached inside a transaction that rolls back (e.g. a spool import that fails half-way) are forgotten."""
    exp = store.get_or_create_experiment("e")
    with pytest.raises(RuntimeError):
        with store.db.transaction():
            ghost = store.create_run(exp.id, run_uuid="f" * 32)
            store.log_metric_arrays(ghost.uuid, "brand_new_key", np.arange(3), np.arange(3), np.ones(3))
            raise RuntimeError("the import failed later on")
    with pytest.raises(NotFoundError):
        store.get_run("f" * 32)
    run = store.create_run(exp.id)
    store.log_metric_arrays(run.uuid, "brand_new_key", np.arange(3), np.arange(3), np.ones(3))  # no FK error
    assert store.metric_history(run.uuid, "brand_new_key").values.tolist() == [1.0, 1.0, 1.0]
