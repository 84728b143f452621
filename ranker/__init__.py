"""The ranker: a fixed feature table, reciprocal-rank fusion, and LightGBM lambdarank models.

Training (``ranker.train``) is not imported here so serving never loads it.
"""

from ranker.base import Ranker
from ranker.features import (
    FEATURE_NAMES,
    build_features,
    feature_names,
    rrf_from_features,
)
from ranker.fusion import FusionRanker
from ranker.lambdamart import LambdaMartRanker

__all__ = [
    "FEATURE_NAMES",
    "FusionRanker",
    "LambdaMartRanker",
    "Ranker",
    "build_features",
    "feature_names",
    "rrf_from_features",
]
