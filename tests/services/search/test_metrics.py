"""GET /metrics: Prometheus text with per-stage latency, plans, feedback, responses and dependency gauges."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_what_the_service_did_without_query_text(client):
    body = client.post("/search", json={"query": "midnight saxophone ballads", "k": 5, "user_id": "alice"}).json()
    client.post("/feedback", json={"request_id": body["request_id"], "entity_id": body["results"][0]["id"], "event": "play"})
    client.post("/search", json={"query": ""})  # a 422
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "midnight" not in text and "alice" not in text, "no query text or user id in metrics"
    samples = _samples(text)
    assert samples[("ltrr_stage_seconds_count", (("stage", "total"),))] == 1
    assert samples[("ltrr_stage_seconds_count", (("stage", "queue"),))] == 1
    assert samples[("ltrr_stage_seconds_count", (("stage", "bandit"),))] == 1
    assert samples[("ltrr_stage_seconds_count", (("stage", "ranker"),))] == 1
    for strategy, quota in body["plan"]["quotas"].items():
        if quota and strategy in ("lexical", "dense"):
            assert samples[("ltrr_stage_seconds_count", (("stage", strategy),))] >= 1
    if body["plan"]["quotas"].get("dense"):
        assert samples[("ltrr_stage_seconds_count", (("stage", "encode"),))] >= 1
    assert samples[("ltrr_plans_chosen_total", (("plan", body["plan"]["name"]),))] == 1
    assert samples[("ltrr_feedback_total", (("event", "play"),))] == 1
    assert samples[("ltrr_http_responses_total", (("route", "/search"), ("status", "200")))] == 1
    assert samples[("ltrr_http_responses_total", (("route", "/search"), ("status", "422")))] == 1
    assert samples[("ltrr_dependency_up", (("dependency", "memory_index"),))] == 1
    assert samples[("ltrr_spool_bytes", ())] == 0
    assert ("ltrr_ingest_lag_seconds", ()) in samples
    assert samples[("ltrr_admission_running", ())] == 0


def test_model_swaps_are_a_timestamp_per_kind_not_a_label_per_version():
    """Ingest publishes every few seconds: a label per version would grow without bound (multiprocess mode
    cannot clear one). One series per kind, moved only when the serving version changes."""
    from services.search.metrics import Metrics

    metrics = Metrics()
    clock = iter([100.0, 200.0, 300.0])  # read once per kind that changed: policy, ranker, then policy again
    for versions in ({"policy": "vw-1", "ranker": "rrf"}, {"policy": "vw-1", "ranker": "rrf"}, {"policy": "vw-2", "ranker": "rrf"}):
        metrics.set_models(versions, now=lambda: next(clock))
    samples = {key: value for key, value in _samples(metrics.render().decode()).items() if key[0].startswith("ltrr_model")}
    assert samples == {
        ("ltrr_model_loaded_timestamp_seconds", (("kind", "policy"),)): 300.0,
        ("ltrr_model_loaded_timestamp_seconds", (("kind", "ranker"),)): 200.0,
    }
