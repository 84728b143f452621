"""The typed events of the impression log: JSON round trips, field-naming validation, logs written
before the types existed, and the engagement vocabulary."""

from __future__ import annotations

import json

import pytest

from contracts import BadRequest, Plan
from contracts.events import (
    SCHEMA_VERSION,
    Engagement,
    FeedbackEvent,
    ImpressionEvent,
    LoggedCandidate,
    LoggedQuery,
    PageItem,
    event_from_json,
)

PLANS = (Plan.of({"dense": 0, "lexical": 20}), Plan.of({"dense": 100, "lexical": 0}))

# A line in the format the service wrote before the event types existed, without the ``skipped`` field
# that older lines lack (it was added later): readers must accept both.
LEGACY_IMPRESSION = (
    '{"kind":"impression","request_id":"r1","time":1000.0,"query":{"text":"Jazz","normalized":"jazz",'
    '"user_id":null,"session_id":null,"slots":[["genre","jazz"]]},"context":{"slot=genre":1.0},'
    '"plan":{"dense":0,"lexical":20},"plan_name":"dense=0+lexical=20","probability":0.75,'
    '"distribution":{"dense=0+lexical=20":0.75,"dense=100+lexical=0":0.25},'
    '"candidates":[{"entity_id":"a","sources":{"lexical":[1.5,1]},"features":[0.1,0.2]}],'
    '"page":[{"entity_id":"a","position":1}],"model_versions":{"policy":"vw-3","ranker":"rrf-60"},'
    '"schema_version":1,"event_id":"e1"}'
)


def _impression() -> ImpressionEvent:
    return ImpressionEvent(
        event_id="e1", request_id="r1", time=1000.0,
        query=LoggedQuery("Jazz", "jazz", "u1", None, (("genre", "jazz"),)),
        context={"slot=genre": 1.0}, plan=PLANS[1], probability=0.25,
        distribution=((PLANS[0].name, 0.75), (PLANS[1].name, 0.25)),
        candidates=(LoggedCandidate("a", {"dense": (0.5, 1)}, (0.1, 0.2)),),
        page=(PageItem("a", 1),), model_versions={"policy": "vw-3", "ranker": "rrf-60"}, skipped={"lexical": "timed out"},
    )


def test_impression_round_trips_through_json_with_the_log_field_names():
    event = _impression()
    record = json.loads(json.dumps(event.to_json()))
    assert record["kind"] == "impression" and record["schema_version"] == SCHEMA_VERSION
    assert record["plan_name"] == "dense=100+lexical=0" and record["probability"] == 0.25
    assert list(record["distribution"]) == [PLANS[0].name, PLANS[1].name], "the distribution keeps the policy's order"
    assert record["page"] == [{"entity_id": "a", "position": 1}]
    assert ImpressionEvent.from_json(record) == event
    decision = event.decision()
    assert (decision.index, decision.plans, decision.probability, decision.policy_version) == (1, PLANS, 0.25, "vw-3")


def test_feedback_round_trips_and_engagements_are_ordered_with_grades():
    event = FeedbackEvent("f1", "r1", "a", Engagement.PLAY, 2, 1010.0)
    assert event_from_json(json.loads(json.dumps(event.to_json()))) == event
    assert event.to_json()["event"] == "play"
    assert [e.value for e in Engagement] == ["click", "favorite", "play"]
    assert [e.grade for e in Engagement] == [1, 2, 3]


def test_a_line_written_before_the_types_existed_still_reads():
    event = event_from_json(json.loads(LEGACY_IMPRESSION))
    assert isinstance(event, ImpressionEvent)
    assert event.skipped == {} and event.query.slots == (("genre", "jazz"),)
    assert event.candidates[0].sources == {"lexical": (1.5, 1)}
    assert event.decision().plan == PLANS[0]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"schema_version": 2}, "schema_version"),
        ({"kind": "view"}, "kind"),
        ({"request_id": ""}, "request_id"),
        ({"time": "soon"}, "time"),
        ({"probability": 0.0}, "probability"),
        ({"probability": 1.5}, "probability"),
        ({"plan": {"dense": -1}}, "plan"),
        ({"page": [{"entity_id": "a"}]}, "page"),
        ({"candidates": [{"entity_id": "a"}]}, "candidates"),
        ({"context": {"x": "y"}}, "context.x"),
        ({"query": {"text": 7, "normalized": "jazz"}}, "query.text"),
        ({"query": "jazz"}, "query"),
    ],
)
def test_invalid_impressions_name_the_field(change, field):
    record = {**json.loads(LEGACY_IMPRESSION), **change}
    with pytest.raises(BadRequest) as error:
        event_from_json(record)
    assert error.value.field == field


def test_invalid_feedback_names_the_field():
    good = FeedbackEvent("f1", "r1", "a", Engagement.CLICK, 1, 1.0).to_json()
    for change, field in (({"event": "share"}, "event"), ({"position": 0}, "position"), ({"event_id": 7}, "event_id")):
        with pytest.raises(BadRequest) as error:
            FeedbackEvent.from_json({**good, **change})
        assert error.value.field == field
    with pytest.raises(BadRequest, match="share"):
        Engagement.parse("share")


def test_a_plan_outside_the_logged_distribution_is_refused():
    record = {**json.loads(LEGACY_IMPRESSION), "plan": {"dense": 20, "lexical": 20}}
    with pytest.raises(BadRequest) as error:
        ImpressionEvent.from_json(record).decision()
    assert error.value.field == "plan"
