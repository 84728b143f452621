"""Traffic for closed loops on a judged (BEIR-format) collection: repeated queries in sessions.

A sample of a split's judged queries is asked with Zipf frequencies (rank ``r`` drawn with weight
``r ** -zipf``), so the memory index has something to remember; each user's session runs several
queries (a geometric number, mean ``session_mean``). A query's targets are its judged documents with a
positive grade; a document whose id equals the query's is ignored, as BEIR does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from contracts import ConfigError

HEAD_QUERIES = 20  # the most frequent queries of the sample are reported apart as kind "head"


@dataclass(frozen=True, slots=True)
class JudgedIntent:
    query_id: str
    text: str
    grades: Mapping[str, int]  # judged documents with a positive grade
    kind: str  # "head" (among the HEAD_QUERIES most frequent) or "tail"
    user_id: str
    session_id: str


class CollectionTraffic:
    """Draws intents from a split's judged queries; the same seed gives the same stream."""

    def __init__(
        self,
        queries: Mapping[str, str],
        qrels: Mapping[str, Mapping[str, int]],
        seed: int,
        sample: int = 300,
        zipf: float = 1.0,
        session_mean: float = 3.0,
        users: int = 200,
    ) -> None:
        if zipf < 0:
            raise ConfigError.about("zipf", f"expected >= 0 (0: every sampled query equally often), got {zipf}")
        if session_mean < 1:
            raise ConfigError.about("session_mean", f"expected >= 1 query per session, got {session_mean}")
        judged = sorted(query_id for query_id in queries if relevant_grades(qrels.get(query_id, {}), query_id))
        if not judged:
            raise ConfigError.about("split", "no query of this split has a judged relevant document")
        rng = np.random.default_rng([seed, 23])
        chosen = [judged[i] for i in rng.permutation(len(judged))[: max(1, sample)]]
        self.queries = {query_id: queries[query_id] for query_id in chosen}
        self.grades = {query_id: relevant_grades(qrels[query_id], query_id) for query_id in chosen}
        self.order = chosen  # Zipf rank order: chosen[0] is the most frequent
        weights = np.arange(1, len(chosen) + 1, dtype=float) ** -zipf
        self.weights = weights / weights.sum()
        self.max_grade = max((grade for grades in self.grades.values() for grade in grades.values()), default=1)
        self.rng = np.random.default_rng([seed, 29])
        self.users = users
        self.session_mean = session_mean
        self._session: tuple[str, str, int] | None = None  # user, session id, queries left
        self._sessions = 0

    def draw(self, index: int) -> JudgedIntent:
        rng = self.rng
        if self._session is None or self._session[2] <= 0:
            user = f"user-{int(rng.integers(self.users))}"
            self._sessions += 1
            self._session = (user, f"{user}-s{self._sessions}", int(rng.geometric(1.0 / self.session_mean)))
        user, session, left = self._session
        self._session = (user, session, left - 1)
        rank = int(rng.choice(len(self.order), p=self.weights))
        query_id = self.order[rank]
        return JudgedIntent(query_id, self.queries[query_id], self.grades[query_id],
                            "head" if rank < HEAD_QUERIES else "tail", user, session)


def relevant_grades(judged: Mapping[str, int], query_id: str) -> dict[str, int]:
    """The judged documents with a positive grade, the query's own id left out (as BEIR does)."""
    return {doc_id: grade for doc_id, grade in judged.items() if grade > 0 and doc_id != query_id}


def ndcg_at(page: list[str], grades: Mapping[str, int], query_id: str, k: int = 10) -> float:
    """nDCG@k of a served page against graded judgments, as BEIR scores it (pytrec_eval: gain = grade,
    log2 discount); the query's own id is dropped from the page first."""
    shown = [entity_id for entity_id in page if entity_id != query_id][:k]
    gains = [float(grades.get(entity_id, 0)) for entity_id in shown]
    dcg = sum(gain / np.log2(position + 2) for position, gain in enumerate(gains))
    ideal = sorted((float(grade) for grade in grades.values()), reverse=True)[:k]
    idcg = sum(gain / np.log2(position + 2) for position, gain in enumerate(ideal))
    return float(dcg / idcg) if idcg > 0 else 0.0
