"""Model reloading: the service reads the versions ``ltrr ingest`` publishes and swaps in those that verify
(checksums, then a load in a child process: a file that would crash LightGBM or VW kills only the child)."""

from __future__ import annotations

import logging

from contracts.artifacts import ModelStore
from services.model_check import CHECKER, ModelChecker
from services.registry import policy_from_directory, ranker_from_directory
from services.search.pipeline import Pipeline
from services.settings import Settings

logger = logging.getLogger(__name__)


def reload_models(pipeline: Pipeline, models: ModelStore, settings: Settings, checker: ModelChecker = CHECKER) -> None:
    """Swap in the published bandit and ranker when their ``CURRENT`` versions differ from the serving ones
    and verify; a version that does not stays out (``checker`` logs it once) and the serving model stays."""
    bandit_version = models.current("bandit")
    if settings.policy == "vw" and bandit_version and bandit_version != pipeline.policy.version and checker.check(models, "bandit", bandit_version).ok:
        pipeline.swap_policy(policy_from_directory(models.directory("bandit", bandit_version), settings))
        logger.info("serving bandit policy %s", bandit_version)
    ranker_version = models.current("ranker")
    if settings.ranker == "lambdamart" and ranker_version and ranker_version != pipeline.ranker.version and checker.check(models, "ranker", ranker_version).ok:
        pipeline.ranker = ranker_from_directory(models.directory("ranker", ranker_version), models)
        logger.info("serving ranker %s", ranker_version)
