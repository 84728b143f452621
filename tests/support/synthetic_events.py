"""Hand-made impression and feedback events (as the service logs them) for ingest and replay tests."""

from __future__ import annotations

from contracts import Plan

PLANS = (Plan.of({"lexical": 20, "dense": 0}), Plan.of({"lexical": 0, "dense": 100}))


def impression(request_id: str, time: float, plan_index: int, probability: float = 0.5) -> dict:
    plan = PLANS[plan_index]
    return {
        "schema_version": 1, "kind": "impression", "event_id": f"imp-{request_id}", "request_id": request_id,
        "time": time, "query": {"text": "jazz", "normalized": "jazz"}, "context": {"slot=genre": 1.0},
        "plan": plan.as_dict(), "plan_name": plan.name, "probability": probability,
        "distribution": {p.name: (probability if i == plan_index else 1 - probability) for i, p in enumerate(PLANS)},
        "candidates": [{"entity_id": "a", "sources": {}, "features": [0.1, 0.2]}, {"entity_id": "b", "sources": {}, "features": [0.3, 0.4]}],
        "page": [{"entity_id": "a", "position": 1}, {"entity_id": "b", "position": 2}],
        "model_versions": {"policy": "test", "ranker": "rrf-60"},
    }


def feedback(request_id: str, entity_id: str, event: str, time: float, n: int = 0) -> dict:
    return {"schema_version": 1, "kind": "feedback", "event_id": f"fb-{request_id}-{n}", "request_id": request_id,
            "entity_id": entity_id, "event": event, "position": 1, "time": time}
