"""The request path: understand -> bandit.choose -> retrievers (per quota) -> union -> ranker -> impression.

The HTTP API and the simulator drive the same ``Pipeline`` object, so what the simulator measures
is what the service does.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Protocol, Sequence

import numpy as np

from bandit.base import Policy
from bandit.context import context_features, history_scopes, with_history
from catalog.schema import Entity
from contracts import (
    BackendUnavailable,
    BadRequest,
    Candidate,
    ConfigError,
    Context,
    Decision,
    EntityFacts,
    Hit,
    NotFound,
    Plan,
    Query,
    Scored,
)
from contracts.events import (
    LOGGED_BELOW_PAGE,
    Engagement,
    FeedbackEvent,
    ImpressionEvent,
    LoggedCandidate,
    LoggedQuery,
    PageItem,
    Randomization,
)
from memory_index.base import MemoryStore
from ranker.base import Ranker
from retrievers.base import Retriever, SharedIndex
from retrievers.understanding import Gazetteer, build_query
from services.eventlog import EventSink, new_id
from services.failpoints import SERVE_VARIABLE, crash_at
from services.search.catalog_changes import CatalogChanges, cold_start, entity_facts
from services.search.ledger import Claim, LocalLedger, RequestLedger, ShownPage

logger = logging.getLogger(__name__)

CATALOG_LOCK_TIMEOUT_S = 30.0  # an entity write waits this long for another process's write to finish

MAX_QUERY_CHARS = 1000
MAX_K = 1000
FEEDBACK_PER_RESULT = 3
FEEDBACK_MARGIN_S = 30.0


@dataclass(frozen=True, slots=True)
class SourceHit:
    strategy: str
    score: float
    rank: int


@dataclass(frozen=True, slots=True)
class ResultItem:
    entity_id: str
    type: str
    title: str
    artist: str
    score: float
    sources: tuple[SourceHit, ...]


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    request_id: str
    results: tuple[ResultItem, ...]
    decision: Decision
    skipped: Mapping[str, str]
    model_versions: Mapping[str, str]
    candidates: int
    fallback: tuple[str, ...] = ()  # entities the fallback strategy added because the plan's strategies found fewer than k
    degraded: tuple[str, ...] = ()  # dependencies this answer was made without


class Observer(Protocol):
    """What the pipeline reports for metrics (``services.search.metrics``); the default reports nowhere."""

    def stage(self, name: str, seconds: float) -> None: ...

    def searched(self, plan: str, skipped: Mapping[str, str], fallback: int, empty: bool) -> None: ...

    def feedback(self, event: str) -> None: ...


class NoObserver:
    def stage(self, name: str, seconds: float) -> None:
        pass

    def searched(self, plan: str, skipped: Mapping[str, str], fallback: int, empty: bool) -> None:
        pass

    def feedback(self, event: str) -> None:
        pass


def check_query_text(text: str) -> str:
    """The request's ``query``: non-blank, at most MAX_QUERY_CHARS, valid Unicode (no lone surrogates)."""
    if not text.strip():
        raise BadRequest("query", "must contain at least one non-whitespace character")
    if len(text) > MAX_QUERY_CHARS:
        raise BadRequest("query", f"is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("query", "contains a lone surrogate (invalid Unicode); send valid UTF-8 text") from None
    return text


def check_k(k: int) -> int:
    if k < 1 or k > MAX_K:
        raise BadRequest("k", f"must be between 1 and {MAX_K}, got {k}")
    return k


@dataclass
class Pipeline:
    retrievers: Mapping[str, Retriever]
    policy: Policy
    plans: tuple[Plan, ...]
    ranker: Ranker
    memory: MemoryStore
    gazetteer: Gazetteer
    facts: dict[str, EntityFacts]
    event_log: EventSink
    strategies: tuple[str, ...]
    hash_user: Callable[[str | None, str], str | None]  # pseudonymises user and session ids (services.user_ids)
    retriever_timeout_s: float = 0.25
    clock: Callable[[], float] = time.time
    ledger: RequestLedger = field(default_factory=lambda: LocalLedger(300.0))
    attribution_window_s: float = 300.0
    catalog_changes: CatalogChanges | None = None
    persist: Callable[[], None] | None = None
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    fallback_strategies: tuple[str, ...] = ()
    max_concurrent: int = 2  # searches admitted at once (the service's admission control); sizes the retriever pool
    observer: Observer = field(default_factory=NoObserver)
    degraded: Callable[[], tuple[str, ...]] = tuple  # the dependencies currently down (the stack knows)
    randomize_pages: float = 0.0  # share of pages with one adjacent pair in random order (LTRR_RANDOMIZE_PAGES)
    strategy_history: bool = False  # the bandit's context carries each strategy's history (LTRR_BANDIT_HISTORY_FEATURES)
    _write_lock: threading.Lock = field(default_factory=threading.Lock)
    _catalog_seen: int = field(default=0, init=False)  # journal lines this process's in-memory state has
    _journal_size: int = field(default=-1, init=False)
    _policy_lock: threading.Lock = field(default_factory=threading.Lock)
    _executor: ThreadPoolExecutor = field(init=False)
    _page_rng: np.random.Generator = field(init=False)
    _page_rng_lock: threading.Lock = field(default_factory=threading.Lock)

    def _with_strategy_history(self, normalized_query: str, context: Context) -> Context:
        """What each strategy earned for this query and its kind (one memory-index round trip; nothing
        while the memory index is down)."""
        scopes = history_scopes(normalized_query, context)
        try:
            stored = self.memory.strategy_history(list(scopes.values()))
        except BackendUnavailable:
            stored = {}
        return with_history(context, {
            scope: {strategy: (record.drawn, record.credited) for strategy, record in stored.get(key, {}).items()}
            for scope, key in scopes.items()
        })

    def __post_init__(self) -> None:
        unknown = [name for name in self.fallback_strategies if name not in self.retrievers]
        if unknown:
            raise ConfigError.about(
                "fallback_strategies", f"{unknown[0]!r} is not a configured strategy ({', '.join(sorted(self.retrievers))}); name configured ones, or none"
            )
        if not 0.0 <= self.randomize_pages <= 1.0:
            raise ConfigError.about("randomize_pages", f"expected a share of pages from 0 to 1, got {self.randomize_pages}")
        self._page_rng = self.rng.spawn(1)[0]  # its own stream: the plan draws stay as they were
        # Every admitted search finds a thread for each of its retrievers, so no budget runs out in a queue here.
        workers = (max(2, len(self.retrievers)) + len(self.fallback_strategies)) * max(1, self.max_concurrent)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="retriever")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- request path -------------------------------------------------------------------------------

    def search(
        self,
        text: str,
        k: int = 10,
        user_id: str | None = None,
        session_id: str | None = None,
        request_context: Mapping[str, object] | None = None,
        timestamp: float | None = None,
        settled: Callable[[], None] | None = None,
    ) -> SearchOutcome:
        """``settled`` is called once when every retriever this search started has finished, also those
        that outlived their budget (admission control holds the search's slot until then)."""
        running: list[Future[list[Hit]]] = []
        started = time.perf_counter()
        try:
            outcome = self._search(text, k, user_id, session_id, request_context, timestamp, running)
            self.observer.stage("total", time.perf_counter() - started)
            self.observer.searched(outcome.decision.plan.name, outcome.skipped, len(outcome.fallback), not outcome.results)
            return outcome
        finally:
            if settled is not None:
                when_all_done(running, settled)

    def _search(
        self,
        text: str,
        k: int,
        user_id: str | None,
        session_id: str | None,
        request_context: Mapping[str, object] | None,
        timestamp: float | None,
        running: list[Future[list[Hit]]],
    ) -> SearchOutcome:
        check_query_text(text)
        check_k(k)
        now = self.clock() if timestamp is None else timestamp
        query = build_query(
            text, user_id=self.hash_user(user_id, "u_"), session_id=self.hash_user(session_id, "s_"), timestamp=now, gazetteer=self.gazetteer
        )
        if not query.normalized:
            raise BadRequest("query", "has no searchable characters after normalization (only punctuation or symbols)")
        try:
            best = self.memory.top(query.normalized, 1)
            seen = self.memory.count(query.normalized)
        except BackendUnavailable:  # the memory index is down: choose as for a query it has not seen
            best, seen = [], 0
        context = context_features(query, seen, request_context, best[0].score if best else None)
        if self.strategy_history:
            context = self._with_strategy_history(query.normalized, context)
        chose = time.perf_counter()
        with self._policy_lock:
            decision = self.policy.choose(context, self.plans, float(self.rng.random()))
        self.observer.stage("bandit", time.perf_counter() - chose)
        started = time.monotonic()
        jobs = {name: quota for name, quota in decision.plan.quotas if quota > 0}
        hits_by_strategy, skipped = self._retrieve(query, jobs, self._budget_left(started), running)
        fallback = self._top_up(query, k, hits_by_strategy, started, running, skipped)
        candidates = union(hits_by_strategy, lambda ids: self._history(query.normalized, ids))
        ranker = self.ranker
        ranking = time.perf_counter()
        ranked = ranker.rank(query, candidates, self.facts) if candidates else []
        self.observer.stage("ranker", time.perf_counter() - ranking)
        page, randomized = self._randomize(ranked[:k])
        request_id = new_id()
        # The version that made the decision: a reload or an in-process update may have swapped it since.
        versions = {"policy": decision.policy_version, "ranker": ranker.version}
        # Remembered before it is logged: a page the ledger could not record is answered 503, never logged.
        self.ledger.record(request_id, ShownPage(now, k, tuple(scored.entity_id for scored in page)))
        self.event_log.append(
            impression_event(
                request_id, query, context.features, decision, candidates, ranked[: k + LOGGED_BELOW_PAGE], page, versions, skipped, fallback,
                randomized,
            )
        )
        provenance = {candidate.entity_id: candidate.provenance for candidate in candidates}
        added = set(fallback)
        results = tuple(self._result_item(scored, provenance[scored.entity_id], added) for scored in page)
        return SearchOutcome(request_id, results, decision, skipped, versions, len(candidates), fallback, self.degraded())

    def _randomize(self, page: Sequence[Scored]) -> tuple[list[Scored], Randomization | None]:
        """On ``randomize_pages`` of the pages, two adjacent results (the upper one uniform over the page)
        are shown in random order: evidence of how much each position is examined that no ranker chose."""
        shown = list(page)
        if self.randomize_pages <= 0 or len(shown) < 2:
            return shown, None
        with self._page_rng_lock:
            if self._page_rng.random() >= self.randomize_pages:
                return shown, None
            pair = int(self._page_rng.integers(1, len(shown)))
            swapped = bool(self._page_rng.random() < 0.5)
        if swapped:
            shown[pair - 1], shown[pair] = shown[pair], shown[pair - 1]
        return shown, Randomization(pair, swapped, self.randomize_pages / (len(shown) - 1))

    def _retrieve(
        self, query: Query, jobs: Mapping[str, int], budget_s: float, running: list[Future[list[Hit]]]
    ) -> tuple[dict[str, list[Hit]], dict[str, str]]:
        """Each strategy's hits within ``budget_s``; ``skipped`` says why one has none."""
        skipped = {name: "not configured" for name in jobs if name not in self.retrievers}
        futures = {self._executor.submit(self._timed_search, name, query, quota): name for name, quota in jobs.items() if name in self.retrievers}
        running.extend(futures)
        done, not_done = wait(futures, timeout=budget_s)
        hits_by_strategy: dict[str, list[Hit]] = {}
        for future in not_done:
            name = futures[future]
            skipped[name] = f"timed out after {self.retriever_timeout_s * 1000:.0f} ms"
            logger.warning("retriever %s exceeded its %.0f ms budget", name, self.retriever_timeout_s * 1000)
        for future in done:
            name = futures[future]
            error = future.exception()
            if error is not None:
                skipped[name] = f"failed: {error.__class__.__name__}: {error}"
                logger.warning("retriever %s failed: %s", name, error)
                continue
            hits_by_strategy[name] = future.result()
        return hits_by_strategy, skipped

    def _timed_search(self, name: str, query: Query, quota: int) -> list[Hit]:
        started = time.perf_counter()
        try:
            return self.retrievers[name].search(query, quota)
        finally:
            self.observer.stage(name, time.perf_counter() - started)

    def _history(self, query: str, ids: list[str]) -> Sequence[tuple[float, float]]:
        try:
            return self.memory.history(query, ids)
        except BackendUnavailable:
            return [(0.0, 0.0)] * len(ids)

    def _budget_left(self, started: float) -> float:
        return max(0.0, self.retriever_timeout_s - (time.monotonic() - started))

    def _top_up(
        self,
        query: Query,
        k: int,
        hits_by_strategy: dict[str, list[Hit]],
        started: float,
        running: list[Future[list[Hit]]],
        skipped: dict[str, str],
    ) -> tuple[str, ...]:
        """When the plan's strategies found fewer than ``k`` entities, add new ones from the fallback
        strategies, in order, until there are ``k`` (within what is left of the budget); returns their ids.
        Their hits join each strategy's own, so the ranker sees them as what they are."""
        found = {hit.entity_id for hits in hits_by_strategy.values() for hit in hits}
        added: list[str] = []
        for name in self.fallback_strategies:
            if len(found) >= k:
                break
            # At least a quarter of the budget, even after the plan used it all: a page should not be empty.
            budget_s = max(self._budget_left(started), self.retriever_timeout_s / 4)
            fetched, failed = self._retrieve(query, {name: k + len(found)}, budget_s, running)
            for strategy, reason in failed.items():
                skipped.setdefault(f"fallback:{strategy}", reason)
            new = [hit for hit in fetched.get(name, []) if hit.entity_id not in found][: k - len(found)]
            if new:
                hits_by_strategy[name] = [*hits_by_strategy.get(name, []), *new]
                found.update(hit.entity_id for hit in new)
                added.extend(hit.entity_id for hit in new)
        return tuple(added)

    def _result_item(self, scored: Scored, provenance: Mapping[str, Hit], fallback: set[str] | frozenset[str] = frozenset()) -> ResultItem:
        facts = self.facts.get(scored.entity_id)
        sources = tuple(SourceHit(name, hit.score, hit.rank) for name, hit in sorted(provenance.items()))
        if scored.entity_id in fallback:  # found by a fallback strategy alone
            sources = tuple(SourceHit("fallback", s.score, s.rank) for s in sources)
        return ResultItem(
            entity_id=scored.entity_id,
            type=facts.type if facts else "unknown",
            title=facts.title if facts else scored.entity_id,
            artist=facts.artist if facts else "",
            score=scored.score,
            sources=sources,
        )

    # -- feedback -----------------------------------------------------------------------------------

    def feedback(
        self,
        request_id: str,
        entity_id: str,
        event: str,
        position: int | None = None,
        timestamp: float | None = None,
    ) -> str:
        shown = self.ledger.page(request_id)
        if shown is None:
            raise NotFound("request_id", f"unknown request_id {request_id[:64]!r} (or older than the attribution window); use the request_id /search returned")
        engagement = Engagement.parse(event)
        if position is not None and position < 1:
            raise BadRequest("position", f"must be >= 1 (1 is the top result), got {position}")
        if entity_id not in shown.entity_ids:
            raise BadRequest("entity_id", f"{entity_id[:64]!r} was not on the page of request {request_id[:64]!r}; feedback counts only for results that were shown")
        key = f"{entity_id}\x1f{engagement.value}"
        now = self.clock() if timestamp is None else timestamp
        # Accepted only well inside the window, so it reaches the log before ingest can close the impression.
        accept_s = self.attribution_window_s - min(FEEDBACK_MARGIN_S, self.attribution_window_s / 10)
        if now - shown.time > accept_s:
            first = self.ledger.first(request_id, key)
            if first is not None:
                return first  # a retry of acknowledged feedback after the window: the same answer
            raise BadRequest(
                "request_id",
                f"the attribution window of this request closed: feedback {now - shown.time:.0f} s after the search, "
                f"accepted up to {accept_s:.0f} s (LTRR_ATTRIBUTION_WINDOW_S is {self.attribution_window_s:.0f})",
            )
        limit = FEEDBACK_PER_RESULT * shown.k
        claim, event_id = self.ledger.claim(request_id, key, new_id(), limit)
        if claim is Claim.REPEAT:
            return event_id
        if claim is Claim.OVER_LIMIT:
            raise BadRequest("request_id", f"already has {limit} feedback events (3 per requested result); further ones are not counted")
        try:
            self.event_log.append(
                FeedbackEvent(event_id=event_id, request_id=request_id, entity_id=entity_id, event=engagement, position=position, time=now)
            )
        except BaseException:
            self.ledger.release(request_id, key, event_id)  # not logged, so not acknowledged: a retry may try again
            raise
        self.observer.feedback(engagement.value)
        return event_id

    # -- catalog updates ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _catalog_locked(self, timeout_s: float | None = CATALOG_LOCK_TIMEOUT_S) -> Iterator[None]:
        """One writer of the indexes at a time: among this process's threads, and with a journal, among
        every process on the data directory (``BackendUnavailable``, a 503, after ``timeout_s``)."""
        journal = self.catalog_changes.locked(timeout_s) if self.catalog_changes is not None else contextlib.nullcontext()
        with self._write_lock, journal:
            yield

    def upsert(self, entities: Sequence[Entity]) -> None:
        """Add or replace entities in every strategy; searchable here when this returns, and in every other
        worker once it follows the journal (``follow_catalog``)."""
        with self._catalog_locked():
            self._sync_catalog_locked()
            if self.catalog_changes is not None:
                self.catalog_changes.record_upsert(entities)  # ahead of the indexes: a crash is finished at restart
            crash_at(SERVE_VARIABLE, "catalog_journaled")
            for index, retriever in enumerate(self.retrievers.values()):
                retriever.upsert(entities)
                if index == 0:
                    crash_at(SERVE_VARIABLE, "catalog_one_index")
            self._learn_entities(entities)
            try:
                cold_start(self.memory, entities)
            except BackendUnavailable:
                logger.warning("predicted memory-index pairs for %d new entities skipped: Redis does not answer", len(entities))
            self._written_locked()

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Remove entities from every strategy; returns the ids that were known."""
        with self._catalog_locked():
            self._sync_catalog_locked()
            known = [entity_id for entity_id in ids if entity_id in self.facts]
            if self.catalog_changes is not None:
                self.catalog_changes.record_delete(known)
            for retriever in self.retrievers.values():
                retriever.delete(ids)
            self._forget_entities(ids)
            self._written_locked()
            return known

    def finish_interrupted_writes(self) -> int:
        """At start, with this process's indexes as opened from disk (they hold the journal's applied
        writes): apply the journaled writes a crash left unapplied; returns how many."""
        if self.catalog_changes is None:
            return 0
        with self._catalog_locked(timeout_s=None):
            self._catalog_seen = self.catalog_changes.applied()
            finished, _ = self._sync_catalog_locked()
            return finished

    def follow_catalog(self) -> int:
        """Apply the entity writes other processes journaled since this one last looked (a cheap check of
        the journal's size first); returns how many. Indexes stored outside the process are refreshed,
        those held in memory apply the writes themselves."""
        if self.catalog_changes is None or self.catalog_changes.size() == self._journal_size:
            return 0
        with self._catalog_locked():
            finished, followed = self._sync_catalog_locked()
            return followed

    def _sync_catalog_locked(self) -> tuple[int, int]:
        """Under ``_catalog_locked``: finish the writes a crashed writer left unapplied (in every index:
        this process is the writer now) and follow the writes this process has not seen; returns
        (finished, followed)."""
        journal = self.catalog_changes
        if journal is None:
            return 0, 0
        records = journal.records()
        applied = min(journal.applied(), len(records))
        unfinished, unseen = records[applied:], records[self._catalog_seen:]
        shared = [r for r in self.retrievers.values() if isinstance(r, SharedIndex)]
        own = [r for r in self.retrievers.values() if not isinstance(r, SharedIndex)]
        _replay(unfinished, shared)
        if unseen:
            for retriever in shared:
                retriever.refresh()
            _replay(unseen, own)
            for record in unseen:
                if record["op"] == "upsert":
                    self._learn_entities([Entity.from_json(record["entity"])])
                else:
                    self._forget_entities([record["id"]])
        if unfinished:
            self._written_locked()
        else:
            self._catalog_seen, self._journal_size = len(records), journal.size()
        return len(unfinished), len(unseen)

    def _learn_entities(self, entities: Sequence[Entity]) -> None:
        for entity in entities:
            self.facts[entity.id] = entity_facts(entity)
        self.gazetteer.add(entities)

    def _forget_entities(self, ids: Sequence[str]) -> None:
        for entity_id in ids:
            self.facts.pop(entity_id, None)

    def _written_locked(self) -> None:
        """Every index holds every journaled write: save what lives in memory, mark the journal applied."""
        if self.persist is not None:
            self.persist()
        if self.catalog_changes is not None:
            self._catalog_seen, self._journal_size = self.catalog_changes.mark_applied(), self.catalog_changes.size()

    # -- model hand-off (ingest is the single writer) -----------------------------------------------

    def swap_policy(self, policy: Policy) -> None:
        with self._policy_lock:
            self.policy = policy

    def learn(self, apply: Callable[[Policy], None]) -> None:
        """Run ``apply`` on the serving policy under the lock that ``choose`` takes (in-process ingest)."""
        with self._policy_lock:
            apply(self.policy)


def _replay(records: Sequence[dict], retrievers: Sequence[Retriever]) -> None:
    """Journaled writes, in order, to ``retrievers`` (upserts and deletes by id are idempotent)."""
    for op, batch in itertools.groupby(records, key=lambda record: record["op"]):
        group = list(batch)
        for retriever in retrievers:
            if op == "upsert":
                retriever.upsert([Entity.from_json(record["entity"]) for record in group])
            else:
                retriever.delete([record["id"] for record in group])


def union(
    hits_by_strategy: Mapping[str, Sequence[Hit]],
    history: Callable[[list[str]], Sequence[tuple[float, float]]] | None = None,
) -> list[Candidate]:
    """Union of every strategy's hits, keeping each entity's per-strategy provenance and, when ``history``
    is given, its ``(impressions, clicks)`` for the query (``history`` maps the union's ids to their counts,
    in order, in one call). Order: first appearance, strategies in name order (the ranker decides the final order)."""
    provenance: dict[str, dict[str, Hit]] = {}
    for name in sorted(hits_by_strategy):
        for hit in hits_by_strategy[name]:
            provenance.setdefault(hit.entity_id, {})[name] = hit
    ids = list(provenance)
    counts = history(ids) if history is not None and ids else [(0.0, 0.0)] * len(ids)
    return [Candidate(entity_id, provenance[entity_id], *count) for entity_id, count in zip(ids, counts, strict=True)]


def impression_event(
    request_id: str,
    query: Query,
    context: Mapping[str, float],
    decision: Decision,
    candidates: Sequence[Candidate],
    ranked: Sequence[Scored],
    page: Sequence[Scored],
    versions: Mapping[str, str],
    skipped: Mapping[str, str],
    fallback: Sequence[str] = (),
    randomized: Randomization | None = None,
) -> ImpressionEvent:
    """The impression record: everything replay and training need, so nothing is recomputed later."""
    provenance = {candidate.entity_id: candidate.provenance for candidate in candidates}
    features = np.round(np.array([scored.features for scored in ranked], dtype=np.float64), 5).tolist()
    return ImpressionEvent(
        event_id=new_id(),
        request_id=request_id,
        time=query.timestamp,
        query=LoggedQuery(
            text=query.text,
            normalized=query.normalized,
            user_id=query.user_id,
            session_id=query.session_id,
            slots=tuple((slot.kind, slot.value) for slot in query.slots),
        ),
        context=dict(context),
        plan=decision.plan,
        probability=decision.probability,
        distribution=tuple((plan.name, p) for plan, p in zip(decision.plans, decision.distribution, strict=True)),
        draw=decision.draw,
        candidates=tuple(
            LoggedCandidate(
                entity_id=scored.entity_id,
                sources={name: (round(hit.score, 5), hit.rank) for name, hit in provenance[scored.entity_id].items()},
                features=tuple(row),
            )
            for scored, row in zip(ranked, features, strict=True)
        ),
        page=tuple(PageItem(scored.entity_id, position) for position, scored in enumerate(page, 1)),
        model_versions=dict(versions),
        skipped=dict(skipped),
        fallback=tuple(fallback),
        randomized=randomized,
    )


def when_all_done(futures: Sequence[Future[list[Hit]]], callback: Callable[[], None]) -> None:
    """Call ``callback`` once, when every one of ``futures`` has finished (at once if they all have)."""
    remaining = [len(futures)]
    lock = threading.Lock()

    def one_done(_: object) -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            callback()

    if not futures:
        callback()
        return
    for future in futures:
        future.add_done_callback(one_done)
