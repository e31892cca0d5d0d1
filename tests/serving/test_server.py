"""The server over real HTTP (uvicorn on 127.0.0.1): formats, statuses, limits, token, metrics, MLflow's own client,
and adaptive batching giving each concurrent caller exactly its own rows."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest
import requests
from serving_factories import FEATURES, EchoPredictor, classifier
from serving_helpers import running

from mlops_desktop.errors import UsageError
from mlops_desktop.serving.app import ServedModel
from mlops_desktop.serving.config import BatchConfig, ServeConfig

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture(scope="module")
def server(clf):
    with running(ServedModel("churn", "3", clf, bundle_hash="abc123")) as srv:
        yield srv


def frame(n=3, seed=0):
    return pd.DataFrame(np.random.default_rng(seed).normal(size=(n, 20)), columns=FEATURES)


def test_mlflow_client_scores_against_our_server(server, clf):
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    host, port = server.url.removeprefix("http://").split(":")
    client = ScoringServerClient(host, int(port))
    client.wait_server_ready(timeout=10)
    df = frame(5)
    answer = client.invoke(df).get_predictions()
    expected = clf.model.predict(df)
    assert list(np.asarray(answer).ravel()) == list(expected)
    # a numpy matrix goes as {"inputs": [[...]]}
    assert list(np.asarray(client.invoke(df.to_numpy()).get_predictions()).ravel()) == list(expected)


def test_every_format_over_http_and_v2(server, clf):
    df = frame(4, seed=1)
    expected = clf.model.predict(df).tolist()
    url = server.url + "/invocations"
    bodies = [
        ("application/json", json.dumps({"dataframe_split": df.to_dict(orient="split")})),
        ("application/json", json.dumps({"dataframe_records": df.to_dict(orient="records")})),
        ("application/json", json.dumps({"instances": df.to_numpy().tolist()})),
        ("application/json", json.dumps({"inputs": {c: df[c].tolist() for c in df}})),
        ("text/csv", df.to_csv(index=False)),
    ]
    for ctype, body in bodies:
        r = requests.post(url, data=body, headers={"Content-Type": ctype}, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": expected}
    v2 = {"id": "req-7", "inputs": [{"name": c, "shape": [4], "datatype": "FP64", "data": df[c].tolist()}
                                    for c in df]}
    for path in ("/v2/models/churn/infer", "/v2/models/churn/versions/3/infer"):
        r = requests.post(server.url + path, json=v2, timeout=10)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["id"] == "req-7" and doc["model_name"] == "churn" and doc["model_version"] == "3"
        outputs = {o["name"]: o for o in doc["outputs"]}
        assert outputs["prediction"]["data"] == expected
        assert outputs["probabilities"]["shape"] == [4, 3]
        assert np.allclose(np.reshape(outputs["probabilities"]["data"], (4, 3)), clf.model.predict_proba(df))
    only = requests.post(server.url + "/v2/models/churn/infer", json=v2 | {"outputs": [{"name": "prediction"}]},
                         timeout=10).json()
    assert [o["name"] for o in only["outputs"]] == ["prediction"]


def test_health_version_metadata_and_routes(server):
    assert requests.get(server.url + "/health", timeout=5).json() == {"status": "ok"}
    assert requests.get(server.url + "/ping", timeout=5).status_code == 200
    assert requests.get(server.url + "/v2/health/live", timeout=5).status_code == 200
    assert requests.get(server.url + "/v2/health/ready", timeout=5).json() == {"ready": True}
    assert requests.get(server.url + "/v2/models/churn/ready", timeout=5).json()["ready"] is True
    version = requests.get(server.url + "/version", timeout=5).json()
    assert (version["model"], version["version"], version["bundle_hash"], version["serving_path"]) == \
        ("churn", "3", "abc123", "sklearn")
    meta = requests.get(server.url + "/v2/models/churn", timeout=5).json()
    assert [i["name"] for i in meta["inputs"]] == FEATURES and meta["versions"] == ["3"]
    assert requests.get(server.url + "/v2/models/other", timeout=5).status_code == 404
    assert requests.get(server.url + "/v2/models/churn/versions/9", timeout=5).status_code == 404
    assert requests.get(server.url + "/nowhere", timeout=5).status_code == 404
    r = requests.get(server.url + "/invocations", timeout=5)
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_request_id_is_echoed_or_made(server):
    body = {"dataframe_records": frame(1).to_dict(orient="records")}
    r = requests.post(server.url + "/invocations", json=body, headers={"X-Request-ID": "abc-123"}, timeout=5)
    assert r.headers["x-request-id"] == "abc-123"
    bad = requests.post(server.url + "/invocations", json=body, headers={"X-Request-ID": "a b/c?"}, timeout=5)
    assert bad.headers["x-request-id"] != "a b/c?" and len(bad.headers["x-request-id"]) > 8


def test_bad_input_over_http_is_a_4xx_in_words(server):
    url = server.url + "/invocations"
    r = requests.post(url, data=b"{oops", headers={"Content-Type": "application/json"}, timeout=5)
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    rec = frame(2).to_dict(orient="records")
    rec[1]["x7"] = "seven"
    r = requests.post(url, json={"dataframe_records": rec}, timeout=5)
    assert r.status_code == 422
    assert r.json() == {"error_code": "INVALID_PARAMETER_VALUE", "field": "x7", "row": 1,
                        "message": "column 'x7', row 1: expected a number (float64), got the string 'seven'"}
    r = requests.post(server.url + "/v2/models/churn/infer", json={"inputs": "x"}, timeout=5)
    assert r.status_code == 400 and "inputs" in r.json()["error"]


def test_a_body_over_the_limit_is_413_naming_the_limit(clf):
    with running(clf, ServeConfig(max_body_bytes=4096)) as srv:
        big = json.dumps({"dataframe_records": frame(60).to_dict(orient="records")})
        assert len(big) > 4096
        r = requests.post(srv.url + "/invocations", data=big, headers={"Content-Type": "application/json"},
                          timeout=10)
        assert r.status_code == 413 and "limit of 4096 bytes" in r.json()["message"]

        def chunks():  # no Content-Length: the limit is enforced while reading
            for i in range(0, len(big), 1000):
                yield big[i:i + 1000].encode()

        r = requests.post(srv.url + "/invocations", data=chunks(), headers={"Content-Type": "application/json"},
                          timeout=10)
        assert r.status_code == 413 and "4096" in r.json()["message"]
        ok = requests.post(srv.url + "/invocations", json={"dataframe_records": frame(2).to_dict("records")},
                           timeout=10)
        assert ok.status_code == 200


def test_bearer_token_guards_everything_but_the_probes(clf):
    with running(clf, ServeConfig(token=TOKEN)) as srv:
        body = {"dataframe_records": frame(1).to_dict(orient="records")}
        r = requests.post(srv.url + "/invocations", json=body, timeout=5)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert requests.post(srv.url + "/invocations", json=body, timeout=5,
                             headers={"Authorization": "Bearer wrong-token-xxxxxxxxxxxx"}).status_code == 401
        assert requests.post(srv.url + "/invocations", json=body, timeout=5,
                             headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert requests.get(srv.url + "/metrics", timeout=5).status_code == 401
        assert requests.get(srv.url + "/v2/models/model", timeout=5).status_code == 401
        for probe in ("/health", "/ping", "/v2/health/live", "/v2/health/ready"):
            assert requests.get(srv.url + probe, timeout=5).status_code == 200


def test_a_public_bind_needs_a_token_or_an_explicit_insecure():
    with pytest.raises(UsageError, match="without a token"):
        ServeConfig(host="0.0.0.0")  # noqa: S104 - the refusal is what is tested
    ServeConfig(host="0.0.0.0", token=TOKEN)  # noqa: S104
    ServeConfig(host="0.0.0.0", insecure=True)  # noqa: S104
    ServeConfig(host="::1")
    with pytest.raises(UsageError, match="16-512"):
        ServeConfig(token="short")


def test_metrics_in_prometheus_text_format(server):
    from prometheus_client.parser import text_string_to_metric_families

    requests.post(server.url + "/invocations", json={"dataframe_records": frame(3).to_dict("records")}, timeout=5)
    requests.post(server.url + "/invocations", data=b"{", headers={"Content-Type": "application/json"}, timeout=5)
    text = requests.get(server.url + "/metrics", timeout=5).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("mlops_requests", "mlops_request_duration_seconds", "mlops_requests_in_flight",
                 "mlops_predictions_by_class", "mlops_batch_size_rows", "mlops_model_info", "mlops_server_build_info",
                 "mlops_prediction_rows"):
        assert name in families, name
    codes = {(s.labels["route"], s.labels["code"]) for s in families["mlops_requests"].samples
             if s.name == "mlops_requests_total"}
    assert ("/invocations", "200") in codes and ("/invocations", "400") in codes
    sample = next(s for s in families["mlops_requests"].samples if s.name == "mlops_requests_total")
    assert sample.labels["model"] == "churn" and sample.labels["version"] == "3"
    buckets = [s.labels["le"] for s in families["mlops_request_duration_seconds"].samples
               if s.name.endswith("_bucket")]
    assert "0.005" in buckets and "10.0" in buckets and "+Inf" in buckets
    classes = sum(s.value for s in families["mlops_predictions_by_class"].samples if s.name.endswith("_total"))
    assert classes >= 3


def test_a_model_error_is_422_for_that_request_only():
    predictor = EchoPredictor()
    original = predictor.predict

    def picky(columns):
        if any(v == "boom" for v in columns["city"]):
            raise ValueError("city 'boom' is not a place")
        return original(columns)

    predictor.predict = picky  # type: ignore[method-assign]
    with running(predictor) as srv:
        ok = {"dataframe_records": [{"age": 1, "income": 2.0, "city": "a", "member": False}]}
        bad = {"dataframe_records": [{"age": 1, "income": 2.0, "city": "boom", "member": False}]}
        r = requests.post(srv.url + "/invocations", json=bad, timeout=5)
        assert r.status_code == 422 and "city 'boom' is not a place" in r.json()["message"]
        assert "Traceback" not in r.text
        assert requests.post(srv.url + "/invocations", json=ok, timeout=5).json() == {"predictions": [3.0]}


def test_concurrent_callers_get_exactly_their_own_rows():
    """Distinct rows from 48 threads at once: batches form (fewer model calls than requests, some with many
    requests) and every caller gets the answer computed from its own rows, in its own order."""
    predictor = EchoPredictor()
    config = ServeConfig(batch=BatchConfig(max_rows=64, max_wait_ms=20))
    results: dict[int, list[float]] = {}
    errors: list[str] = []
    with running(predictor, config) as srv:
        session_local = threading.local()

        def call(i: int) -> None:
            s = getattr(session_local, "s", None) or requests.Session()
            session_local.s = s
            n = 1 + i % 5
            rows = [{"age": i * 100 + j, "income": float(j) / 10, "city": f"c{i}", "member": j % 2 == 0}
                    for j in range(n)]
            r = s.post(srv.url + "/invocations", json={"dataframe_records": rows}, timeout=30)
            if r.status_code != 200:
                errors.append(r.text)
                return
            results[i] = r.json()["predictions"]

        threads = [threading.Thread(target=lambda k=k: [call(k * 10 + m) for m in range(10)]) for k in range(48)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        text = requests.get(srv.url + "/metrics", timeout=5).text
    assert not errors
    assert len(results) == 480
    for i, got in results.items():
        n = 1 + i % 5
        assert got == [i * 100 + j + j / 10 + (1000.0 if j % 2 == 0 else 0.0) for j in range(n)], i
    assert len(predictor.calls) < 480, "no request was batched with another"
    assert max(predictor.calls) > 5, "no batch held more than one request's rows"
    assert sum(predictor.calls) == sum(1 + i % 5 for i in range(480))
    assert 'mlops_batch_size_requests_count{model="model",version="1"}' in text


def test_a_lone_caller_is_not_kept_waiting_by_max_wait(clf):
    import time

    with running(clf, ServeConfig(batch=BatchConfig(max_rows=256, max_wait_ms=500))) as srv:
        s = requests.Session()
        body = {"dataframe_records": frame(1).to_dict("records")}
        s.post(srv.url + "/invocations", json=body, timeout=5)
        start = time.perf_counter()
        for _ in range(5):
            assert s.post(srv.url + "/invocations", json=body, timeout=5).status_code == 200
        # 5 sequential calls with a 500 ms max wait: a waiting batcher would take >= 2.5 s
        assert time.perf_counter() - start < 2.0


def test_several_servers_in_one_process_keep_their_own_state(clf):
    with running(ServedModel("a", "1", clf)) as one, running(ServedModel("b", "2", classifier(version="2"))) as two:
        body = {"dataframe_records": frame(2).to_dict("records")}
        requests.post(one.url + "/invocations", json=body, timeout=5)
        assert 'model="a"' in requests.get(one.url + "/metrics", timeout=5).text
        assert 'model="a"' not in requests.get(two.url + "/metrics", timeout=5).text
        assert requests.get(two.url + "/version", timeout=5).json()["model"] == "b"

