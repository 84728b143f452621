"""Model reloading: the service reads the versions ``ltrr ingest`` publishes and swaps them in."""

from __future__ import annotations

import logging

from bandit.vw_policy import VWPolicy
from ranker.lambdamart import LambdaMartRanker
from services.models import ModelStore
from services.search.pipeline import Pipeline
from services.settings import Settings

logger = logging.getLogger(__name__)


def reload_models(pipeline: Pipeline, models: ModelStore, settings: Settings) -> None:
    """Swap in the published bandit and ranker when their ``CURRENT`` versions differ from the serving ones."""
    bandit_version = models.current("bandit")
    if settings.policy == "vw" and bandit_version and bandit_version != pipeline.policy.version:
        pipeline.swap_policy(VWPolicy.load(models.directory("bandit", bandit_version), seed=settings.seed))
        logger.info("serving bandit policy %s", bandit_version)
    ranker_version = models.current("ranker")
    if ranker_version and ranker_version != pipeline.ranker.version:
        pipeline.ranker = LambdaMartRanker.load(models.directory("ranker", ranker_version))
        logger.info("serving ranker %s", ranker_version)
