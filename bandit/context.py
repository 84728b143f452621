"""Context features for the bandit: what the query looks like, when it was asked, who asked,
and how much the memory index already knows about it."""

from __future__ import annotations

import datetime as dt
from typing import Mapping

from contracts import Context, Query

SLOT_KINDS = ("artist", "title", "genre", "mood", "type")


def _bucket(value: int, edges: tuple[int, ...]) -> str:
    for edge in edges:
        if value <= edge:
            return f"<={edge}"
    return f">{edges[-1]}"


def memory_evidence(best_score: float | None) -> str:
    """What the memory index knows about a query, from its best entity's score (``memory_index`` scores:
    predicted pairs lie in [0, 1), observed ones are 1 + smoothed click-through rate)."""
    if best_score is None:
        return "none"
    if best_score < 1.0:
        return "predicted"
    return "clicked" if best_score - 1.0 >= CLICKED_RATE else "shown"


CLICKED_RATE = 0.15

HISTORY_SCOPES = ("query", "kind")


def query_kind(context: Context) -> str:
    """The kind of a query, read off its context features alone (recognised slots, token length, what the
    memory index knows): the same string for the service, which keys the strategy history by it, and for
    ingest, which reads it back from the logged context."""
    features = context.features
    slots = "+".join(kind for kind in SLOT_KINDS if f"slot={kind}" in features) or "none"
    tokens = next((name for name in features if name.startswith("tokens=")), "tokens=?")
    evidence = next((name for name in features if name.startswith("memory_evidence=")), "memory_evidence=?")
    return f"slots={slots}|{tokens}|{evidence}"


def history_scopes(normalized_query: str, context: Context) -> dict[str, str]:
    """The memory-index scope of each of ``HISTORY_SCOPES`` for this query: its text, and its kind."""
    return {"query": f"q:{normalized_query}", "kind": f"k:{query_kind(context)}"}


def with_history(context: Context, history: Mapping[str, Mapping[str, tuple[float, float]]]) -> Context:
    """``context`` plus what each strategy has earned under each scope of ``HISTORY_SCOPES``: from
    ``(drawn, credited)`` (impressions it drew for, and those where it supplied an engaged entity),
    ``<scope>_credit_<strategy>`` = credited / (drawn + 1), which is 0 until the strategy has earned
    something and approaches its credit rate as draws accumulate, and ``<scope>_tried_<strategy>`` =
    drawn / (drawn + 3). With VW's context x action interactions they price each plan's strategies."""
    features = dict(context.features)
    for scope in HISTORY_SCOPES:
        for strategy, (drawn, credited) in sorted(history.get(scope, {}).items()):
            if drawn <= 0:
                continue
            features[f"{scope}_credit_{strategy}"] = credited / (drawn + 1.0)
            features[f"{scope}_tried_{strategy}"] = drawn / (drawn + 3.0)
    return Context(features)


def context_features(
    query: Query,
    memory_count: int,
    request_context: Mapping[str, object] | None = None,
    memory_best_score: float | None = None,
) -> Context:
    """Categoricals as ``name=value`` -> 1.0; a few numeric features scaled to about [0, 1]."""
    tokens = query.tokens
    features: dict[str, float] = {
        f"tokens={_bucket(len(tokens), (1, 2, 3, 5))}": 1.0,
        f"chars={_bucket(len(query.normalized), (8, 16, 32))}": 1.0,
        "n_tokens": min(len(tokens), 10) / 10.0,
        f"memory={_bucket(memory_count, (0, 3, 20))}": 1.0,
        f"memory_evidence={memory_evidence(memory_best_score)}": 1.0,
    }
    kinds = {slot.kind for slot in query.slots}
    for kind in SLOT_KINDS:
        if kind in kinds:
            features[f"slot={kind}"] = 1.0
    if not kinds:
        features["slot=none"] = 1.0
    covered = sum(len(slot.matched.split()) for slot in query.slots if slot.kind in ("title", "artist"))
    if tokens and covered >= len(tokens):
        features["names_cover_query"] = 1.0
    when = dt.datetime.fromtimestamp(query.timestamp, tz=dt.timezone.utc)
    features[f"hour={when.hour // 6}"] = 1.0
    features[f"weekend={int(when.weekday() >= 5)}"] = 1.0
    features[f"has_user={int(query.user_id is not None)}"] = 1.0
    features[f"has_session={int(query.session_id is not None)}"] = 1.0
    for name, value in (request_context or {}).items():
        if isinstance(value, bool):
            features[f"ctx_{name}={int(value)}"] = 1.0
        elif isinstance(value, (int, float)):
            features[f"ctx_{name}"] = float(value)
        elif isinstance(value, str) and len(value) <= 64:
            features[f"ctx_{name}={value}"] = 1.0
    return Context(features)
