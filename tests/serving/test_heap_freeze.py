"""The server freezes its start-up heap, so a full collection no longer walks the model's objects (the p99 fix)."""

from __future__ import annotations

import gc
import inspect
import time

from mlops_desktop.serving import runner


def test_freeze_heap_takes_the_start_up_heap_out_of_full_collections():
    import pandas  # noqa: F401 - a heap like a served model's
    import sklearn.linear_model  # noqa: F401

    gc.unfreeze()
    try:
        before = len(gc.get_objects())
        t = time.perf_counter()
        gc.collect()
        unfrozen = time.perf_counter() - t
        runner.freeze_heap()
        assert gc.get_freeze_count() >= before * 0.9
        t = time.perf_counter()
        gc.collect()
        frozen = time.perf_counter() - t
        assert frozen < unfrozen, (frozen, unfrozen)
    finally:
        gc.unfreeze()


def test_the_server_freezes_its_heap_once_it_is_started():
    source = inspect.getsource(runner.serve_forever)
    started = source.index("if server.started:")
    assert "freeze_heap()" in source[started:source.index("await task")]
