"""Simulated users for closed loops on judged collections: three click models over graded relevance.

A document's *attractiveness* depends on its judged grade ``g`` (0 when unjudged) as in Chapelle et al.
(CIKM 2009) and the unbiased learning-to-rank literature that follows them:
``noise + (1 - noise) * (2**g - 1) / (2**max_grade - 1)``.

- **Position-based** (Craswell et al., WSDM 2008): position ``i`` (1-based) is examined with probability
  ``(1 / i) ** eta``, independently of the rest of the page; an examined document is clicked with its
  attractiveness.
- **Cascade** (Craswell et al. 2008): the user reads top-down, clicks an attractive document and stops.
- **Dynamic Bayesian network** (Chapelle & Zhang, WWW 2009): top-down; a clicked document satisfies
  with probability ``satisfaction`` times its relative grade (then the user stops); otherwise the user
  goes on with probability ``perseverance``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from contracts import ConfigError

CLICK_MODELS = ("pbm", "cascade", "dbn")
PLAY_AFTER_RELEVANT_CLICK = 0.6  # a click on a judged-relevant document is followed by a play ("read")


@dataclass(frozen=True, slots=True)
class ClickModel:
    name: str = "pbm"
    eta: float = 1.0  # pbm: examination (1/i)**eta
    noise: float = 0.05  # attractiveness of an unjudged or grade-0 document
    perseverance: float = 0.9  # dbn: goes on after an unsatisfying result
    satisfaction: float = 0.8  # dbn: a clicked top-grade document satisfies with this probability

    def __post_init__(self) -> None:
        if self.name not in CLICK_MODELS:
            raise ConfigError.about("click_model", f"expected one of {', '.join(CLICK_MODELS)}, got {self.name!r}")
        for field, value in (("noise", self.noise), ("perseverance", self.perseverance), ("satisfaction", self.satisfaction)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError.about(field, f"a probability is expected (0 to 1), got {value}")
        if self.eta < 0:
            raise ConfigError.about("eta", f"expected >= 0 (0: every position is examined), got {self.eta}")

    def attractiveness(self, grade: int, max_grade: int) -> float:
        top = max(1, max_grade)
        relative = (2.0 ** max(0, grade) - 1.0) / (2.0**top - 1.0)
        return self.noise + (1.0 - self.noise) * min(1.0, relative)

    def examination(self, position: int) -> float:
        """The position-based model's examination probability (1-based position)."""
        return float((1.0 / position) ** self.eta)

    def clicks(self, page: Sequence[str], grades: Mapping[str, int], max_grade: int, rng: np.random.Generator) -> list[int]:
        """The 1-based positions clicked on ``page`` (ids; ``grades`` holds the judged ones)."""
        clicked: list[int] = []
        for position, entity_id in enumerate(page, start=1):
            grade = grades.get(entity_id, 0)
            attracted = rng.random() < self.attractiveness(grade, max_grade)
            if self.name == "pbm":
                if rng.random() < self.examination(position) and attracted:
                    clicked.append(position)
                continue
            if attracted:
                clicked.append(position)
                if self.name == "cascade":
                    return clicked
                relative = (2.0 ** max(0, grade) - 1.0) / (2.0 ** max(1, max_grade) - 1.0)
                if rng.random() < self.satisfaction * relative:
                    return clicked
            if self.name == "dbn" and rng.random() >= self.perseverance:
                return clicked
        return clicked
