"""What each strategy earned, as context: the query kind read off the context alone, and the history features."""

from __future__ import annotations

import pytest

from bandit.context import history_scopes, query_kind, with_history
from contracts import Context


def test_the_kind_comes_from_slots_length_and_memory_evidence_only():
    context = Context({"tokens=<=2": 1.0, "slot=genre": 1.0, "slot=mood": 1.0, "memory_evidence=clicked": 1.0, "hour=1": 1.0,
                       "intent=topic": 1.0})
    assert query_kind(context) == "slots=genre+mood|tokens=<=2|memory_evidence=clicked"
    assert query_kind(Context({"tokens=<=1": 1.0, "memory_evidence=none": 1.0})) == "slots=none|tokens=<=1|memory_evidence=none"
    assert history_scopes("sad jazz", context) == {"query": "q:sad jazz", "kind": "k:slots=genre+mood|tokens=<=2|memory_evidence=clicked"}


def test_history_features_are_shrunk_credit_rates_and_draw_counts():
    context = Context({"tokens=<=1": 1.0})
    featured = with_history(context, {"query": {"memory": (3.0, 3.0), "lexical": (1.0, 0.0), "dense": (0.0, 0.0)},
                                      "kind": {"dense": (9.0, 3.0)}})
    assert featured.features["tokens=<=1"] == 1.0
    assert featured.features["query_credit_memory"] == pytest.approx(3 / 4)
    assert featured.features["query_tried_memory"] == pytest.approx(3 / 6)
    assert featured.features["query_credit_lexical"] == 0.0
    assert featured.features["kind_credit_dense"] == pytest.approx(3 / 10)
    assert "query_credit_dense" not in featured.features, "a strategy never drawn adds nothing"
    assert with_history(context, {}) == context
