"""The events of the impression log: what the service shows and what users do with it.

``ImpressionEvent`` and ``FeedbackEvent`` are written once, as one JSON object a line, and read back by
ingestion, replay and training. ``to_json`` keeps the field names of the log (``kind``, ``request_id``,
``plan_name``, ``probability``, ``distribution``, ``page``, ``time``, …) so logs written before these
types existed still read. ``from_json`` validates and raises ``BadRequest`` naming the field.

``Engagement`` is the one vocabulary of feedback (click < favorite < play) with its integer ranker
grade; what each engagement is worth to the bandit is a separate mapping (``bandit.reward``).
"""

from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from contracts.errors import BadRequest
from contracts.types import Decision, Plan

SCHEMA_VERSION = 1


# An impression logs its ranked candidates down to this many below the page: ranker training reads every
# engaged candidate (always on the page) and the first this many others, so deeper ones would only weigh
# down every event.
LOGGED_BELOW_PAGE = 50


class Engagement(enum.Enum):
    """Feedback events, weakest first; ``grade`` is the ranker's relevance label (0 means none)."""

    CLICK = "click"
    FAVORITE = "favorite"
    PLAY = "play"

    @property
    def grade(self) -> int:
        return _GRADES[self]

    @classmethod
    def parse(cls, value: object, field_name: str = "event") -> Engagement:
        try:
            return cls(value)
        except ValueError:
            shown = value[:32] if isinstance(value, str) else value
            raise BadRequest(field_name, f"must be one of {', '.join(ENGAGEMENTS)}, got {shown!r}") from None


_GRADES = {Engagement.CLICK: 1, Engagement.FAVORITE: 2, Engagement.PLAY: 3}
ENGAGEMENTS: tuple[str, ...] = tuple(engagement.value for engagement in Engagement)


# -- field checks: each names the field it checks -------------------------------------------------


def _string(record: Mapping[str, Any], name: str, *, optional: bool = False, non_empty: bool = True, parent: str = "") -> Any:
    value = record.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or (non_empty and not value):
        raise BadRequest(parent + name, f"expected a {'non-empty ' if non_empty else ''}string, got {_short(value)}")
    return value


def _number(record: Mapping[str, Any], name: str, parent: str = "") -> float:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequest(parent + name, f"expected a finite number, got {_short(value)}")
    return float(value)


def _numbers(mapping: Mapping[str, Any], parent: str) -> tuple[tuple[str, float], ...]:
    """Every (name, value) of a JSON object of finite numbers, as ``_number`` checks each (ingest reads
    dozens an impression: a float passes on one type test)."""
    pairs = []
    for name, value in mapping.items():
        if type(value) is not float or not math.isfinite(value):
            value = _number(mapping, name, parent)
        pairs.append((str(name), value))
    return tuple(pairs)


def _mapping(record: Mapping[str, Any], name: str, *, optional: bool = False) -> Mapping[str, Any]:
    value = record.get(name)
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(name, f"expected a JSON object, got {_short(value)}")
    return value


def _list(record: Mapping[str, Any], name: str) -> list[Any]:
    value = record.get(name)
    if not isinstance(value, list):
        raise BadRequest(name, f"expected a JSON array, got {_short(value)}")
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_header(record: object, kind: str) -> Mapping[str, Any]:
    if not isinstance(record, dict):
        raise BadRequest("event", "expected a JSON object")
    if record.get("schema_version") != SCHEMA_VERSION:
        raise BadRequest("schema_version", f"expected {SCHEMA_VERSION}, got {_short(record.get('schema_version'))}")
    if record.get("kind") != kind:
        raise BadRequest("kind", f"expected {kind!r}, got {_short(record.get('kind'))}")
    return record


# -- impressions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoggedQuery:
    text: str
    normalized: str
    user_id: str | None = None
    session_id: str | None = None
    slots: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class LoggedCandidate:
    """A candidate as the ranker scored it: per-strategy ``(score, rank)`` and the exact feature row."""

    entity_id: str
    sources: Mapping[str, tuple[float, int]]
    features: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class PageItem:
    entity_id: str
    position: int


@dataclass(frozen=True, slots=True)
class Randomization:
    """The page's randomized part: the results the ranker put at positions ``pair`` and ``pair + 1``
    (1-based) were shown in random order, ``swapped`` when exchanged. ``probability``: that this pair
    was chosen for randomization (the swap itself is a fair coin)."""

    pair: int
    swapped: bool
    probability: float


@dataclass(frozen=True, slots=True)
class ImpressionEvent:
    """One answered search: the context, the chosen plan with its probability and the whole distribution
    (plan name -> probability, in the order the policy saw the plans), the candidates with their exact
    ranker features, the page, and the model versions. ``skipped`` names strategies that did not answer;
    ``fallback`` the entities the fallback strategy added to a page the plan left short of ``k``."""

    kind: ClassVar[str] = "impression"

    event_id: str
    request_id: str
    time: float
    query: LoggedQuery
    context: Mapping[str, float]
    plan: Plan
    probability: float
    distribution: tuple[tuple[str, float], ...]
    candidates: tuple[LoggedCandidate, ...]
    page: tuple[PageItem, ...]
    model_versions: Mapping[str, str] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)
    draw: float | None = None
    fallback: tuple[str, ...] = ()
    randomized: Randomization | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def policy_version(self) -> str:
        return self.model_versions.get("policy", "")

    def decision(self) -> Decision:
        """The logged decision; raises ``BadRequest`` when the plan is not in the logged distribution."""
        plans, index_of = _plans(tuple(name for name, _ in self.distribution))
        index = index_of.get(self.plan)
        if index is None:
            raise BadRequest("plan", f"{self.plan.name!r} is not among the plans of the logged distribution")
        return Decision(
            plan=self.plan,
            probability=self.probability,
            distribution=tuple(p for _, p in self.distribution),
            plans=plans,
            index=index,
            policy_version=self.policy_version,
            draw=self.draw,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "request_id": self.request_id,
            "time": self.time,
            "query": {
                "text": self.query.text,
                "normalized": self.query.normalized,
                "user_id": self.query.user_id,
                "session_id": self.query.session_id,
                "slots": [[kind, value] for kind, value in self.query.slots],
            },
            "context": dict(self.context),
            "plan": self.plan.as_dict(),
            "plan_name": self.plan.name,
            "probability": self.probability,
            "distribution": dict(self.distribution),
            **({} if self.draw is None else {"draw": self.draw}),
            "candidates": [
                {
                    "entity_id": candidate.entity_id,
                    "sources": {name: [score, rank] for name, (score, rank) in candidate.sources.items()},
                    "features": list(candidate.features),
                }
                for candidate in self.candidates
            ],
            "page": [{"entity_id": item.entity_id, "position": item.position} for item in self.page],
            "model_versions": dict(self.model_versions),
            "skipped": dict(self.skipped),
            **({"fallback": list(self.fallback)} if self.fallback else {}),
            **({} if self.randomized is None else {"randomized": {
                "pair": self.randomized.pair, "swapped": self.randomized.swapped, "probability": self.randomized.probability}}),
            "schema_version": self.schema_version,
            "event_id": self.event_id,
        }

    @classmethod
    def from_json(cls, record: object, with_candidates: bool = True) -> ImpressionEvent:
        """The typed impression; ``with_candidates=False`` leaves ``candidates`` empty (a reader that needs
        only the decision and the page skips the costliest part, checking just that it is a list)."""
        checked = _check_header(record, cls.kind)
        query = _mapping(checked, "query")
        try:
            slots = tuple((str(kind), str(value)) for kind, value in query.get("slots", []))
        except (TypeError, ValueError):
            raise BadRequest("query.slots", "expected a list of [kind, value] pairs") from None
        logged_query = LoggedQuery(
            text=_string(query, "text", non_empty=False, parent="query."),
            normalized=_string(query, "normalized", non_empty=False, parent="query."),
            user_id=_string(query, "user_id", optional=True, non_empty=False, parent="query."),
            session_id=_string(query, "session_id", optional=True, non_empty=False, parent="query."),
            slots=slots,
        )
        context = dict(_numbers(_mapping(checked, "context"), "context."))
        plan_quotas = _mapping(checked, "plan")
        if not all(isinstance(q, int) and not isinstance(q, bool) and q >= 0 for q in plan_quotas.values()):
            raise BadRequest("plan", f"expected strategy -> quota (an integer >= 0), got {_short(plan_quotas)}")
        probability = _number(checked, "probability")
        if not 0.0 < probability <= 1.0:
            raise BadRequest("probability", f"expected a number in (0, 1], got {probability!r}")
        distribution = _numbers(_mapping(checked, "distribution"), "distribution.")
        try:
            candidates = tuple(
                LoggedCandidate(
                    entity_id=str(candidate["entity_id"]),
                    sources={name: (float(score), int(rank)) for name, (score, rank) in candidate["sources"].items()},
                    features=tuple(map(float, candidate["features"])),
                )
                for candidate in (_list(checked, "candidates") if with_candidates else ())
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise BadRequest("candidates", f"expected entity_id, sources and features per candidate ({error!r})") from None
        try:
            page = tuple(PageItem(str(item["entity_id"]), int(item["position"])) for item in _list(checked, "page"))
        except (KeyError, TypeError, ValueError) as error:
            raise BadRequest("page", f"expected entity_id and position per item ({error!r})") from None
        return cls(
            event_id=_string(checked, "event_id"),
            request_id=_string(checked, "request_id"),
            time=_number(checked, "time"),
            query=logged_query,
            context=context,
            plan=Plan.of(plan_quotas),
            probability=probability,
            distribution=distribution,
            candidates=candidates,
            page=page,
            model_versions={str(k): str(v) for k, v in _mapping(checked, "model_versions", optional=True).items()},
            skipped={str(k): str(v) for k, v in _mapping(checked, "skipped", optional=True).items()},
            draw=_optional_draw(checked),
            fallback=_optional_ids(checked, "fallback"),
            randomized=_optional_randomization(checked, len(page)),
        )


@functools.lru_cache(maxsize=256)
def _plans(names: tuple[str, ...]) -> tuple[tuple[Plan, ...], dict[Plan, int]]:
    """The plans of a logged distribution and the first index of each, parsed once per plan space (every
    impression of a policy logs the same)."""
    plans = tuple(Plan.parse(name) for name in names)
    index_of: dict[Plan, int] = {}
    for index, plan in enumerate(plans):
        index_of.setdefault(plan, index)
    return plans, index_of


def _optional_randomization(record: Mapping[str, Any], page_size: int) -> Randomization | None:
    value = record.get("randomized")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("randomized", f"expected pair, swapped and probability, got {_short(value)}")
    pair, swapped, probability = value.get("pair"), value.get("swapped"), value.get("probability")
    if isinstance(pair, bool) or not isinstance(pair, int) or not 1 <= pair < page_size:
        raise BadRequest("randomized.pair", f"expected the upper position of two adjacent results on the page, got {_short(pair)}")
    if not isinstance(swapped, bool):
        raise BadRequest("randomized.swapped", f"expected true or false, got {_short(swapped)}")
    if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0.0 < probability <= 1.0:
        raise BadRequest("randomized.probability", f"expected a number in (0, 1], got {_short(probability)}")
    return Randomization(pair, swapped, float(probability))


def _optional_ids(record: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = record.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequest(name, f"expected a list of entity ids, got {_short(value)}")
    return tuple(value)


def _optional_draw(record: Mapping[str, Any]) -> float | None:
    """The uniform draw that chose the plan; logs written before it was recorded have none."""
    if record.get("draw") is None:
        return None
    draw = _number(record, "draw")
    if not 0.0 <= draw < 1.0:
        raise BadRequest("draw", f"expected a number in [0, 1), got {draw!r}")
    return draw


# -- feedback -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedbackEvent:
    """A user's engagement with an entity of an earlier impression (``position`` 1 is the top result)."""

    kind: ClassVar[str] = "feedback"

    event_id: str
    request_id: str
    entity_id: str
    event: Engagement
    position: int | None
    time: float
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "event_id": self.event_id,
            "request_id": self.request_id,
            "entity_id": self.entity_id,
            "event": self.event.value,
            "position": self.position,
            "time": self.time,
            "schema_version": self.schema_version,
        }

    @classmethod
    def from_json(cls, record: object) -> FeedbackEvent:
        checked = _check_header(record, cls.kind)
        position = checked.get("position")
        if position is not None and (isinstance(position, bool) or not isinstance(position, int) or position < 1):
            raise BadRequest("position", f"expected an integer >= 1 or null, got {_short(position)}")
        return cls(
            event_id=_string(checked, "event_id"),
            request_id=_string(checked, "request_id"),
            entity_id=_string(checked, "entity_id", non_empty=False),
            event=Engagement.parse(checked.get("event")),
            position=position,
            time=_number(checked, "time"),
        )


Event = ImpressionEvent | FeedbackEvent


def event_from_json(record: object) -> Event:
    """The typed event of a parsed log line; ``BadRequest`` names the field that is wrong."""
    if not isinstance(record, dict):
        raise BadRequest("event", "expected a JSON object")
    kind = record.get("kind")
    if kind == ImpressionEvent.kind:
        return ImpressionEvent.from_json(record)
    if kind == FeedbackEvent.kind:
        return FeedbackEvent.from_json(record)
    if record.get("schema_version") != SCHEMA_VERSION:
        raise BadRequest("schema_version", f"expected {SCHEMA_VERSION}, got {_short(record.get('schema_version'))}")
    raise BadRequest("kind", f"expected 'impression' or 'feedback', got {_short(kind)}")
