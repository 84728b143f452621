"""Serving a LightGBM lambdarank model saved as a versioned directory.

Directory layout: ``model.txt`` (LightGBM's text format) and ``manifest.json`` with ``version``,
``feature_names``, ``strategies``, ``data_window``, ``metrics``, ``libraries`` and ``files`` (checksums).
Training lives in ``ranker/train.py``; this module never imports it.
"""

from __future__ import annotations

import logging
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Mapping, Sequence

import lightgbm
import numpy as np

from contracts import ArtifactError, Candidate, EntityFacts, Query, Scored
from contracts.artifacts import MANIFEST_FILE, read_manifest, verify_files
from ranker.features import build_features, feature_names

logger = logging.getLogger(__name__)

MODEL_FILE = "model.txt"
MANIFEST_FORMAT = 2


class LambdaMartRanker:
    """``Ranker`` scoring candidates with a LightGBM booster; ties broken by ``entity_id``.

    Use ``LambdaMartRanker.load(directory)``. ``strategies`` (optional) are the strategies the caller
    serves; a model trained on other strategies raises ``ArtifactError``.
    """

    def __init__(self, booster: lightgbm.Booster, manifest: Mapping[str, Any]) -> None:
        self._booster = booster
        self.manifest = dict(manifest)
        self.version = str(manifest["version"])
        self.strategies: tuple[str, ...] = tuple(manifest["strategies"])
        self.feature_names: tuple[str, ...] = tuple(manifest["feature_names"])

    @classmethod
    def load(cls, directory: Path, strategies: Sequence[str] | None = None) -> LambdaMartRanker:
        directory = Path(directory)
        manifest_path, model_path = directory / MANIFEST_FILE, directory / MODEL_FILE
        manifest = read_manifest(directory, "ranker model", "load a directory written by ranker training, or use the fusion ranker", [MODEL_FILE])
        try:
            saved_names = tuple(manifest["feature_names"])
            saved_strategies = tuple(manifest["strategies"])
            str(manifest["version"])
        except (ValueError, KeyError, TypeError) as error:
            raise ArtifactError(f"ranker model: {manifest_path} is not a valid manifest ({error!r}); retrain the ranker") from error
        if manifest.get("format") not in (1, MANIFEST_FORMAT):
            raise ArtifactError(f"ranker model: {manifest_path} has format={manifest.get('format')!r}, expected {MANIFEST_FORMAT}; retrain the ranker")
        current_names = feature_names(saved_strategies)
        if saved_names != current_names:
            changed = sorted(set(saved_names) ^ set(current_names)) or ["(column order)"]
            raise ArtifactError(f"ranker model {manifest['version']}: its features differ from this code's feature table ({', '.join(changed[:5])}); retrain the ranker on newly logged features")
        if strategies is not None and tuple(strategies) != saved_strategies:
            raise ArtifactError(f"ranker model {manifest['version']} was trained for strategies {list(saved_strategies)}, but the configured strategies are {list(strategies)}; retrain, or configure the strategies it was trained with")
        # format 1 models were saved before manifests carried a checksum
        verify_files(directory, manifest, "ranker model", MODEL_FILE, required=manifest.get("format") != 1)
        try:
            booster = lightgbm.Booster(model_file=str(model_path))
        except lightgbm.basic.LightGBMError as error:
            raise ArtifactError(f"ranker model: LightGBM cannot read {model_path} ({error}); retrain the ranker") from error
        if booster.num_feature() != len(current_names):
            raise ArtifactError(f"ranker model: {model_path} expects {booster.num_feature()} features, the manifest lists {len(current_names)}; the directory is inconsistent, retrain")
        saved_lightgbm = manifest.get("libraries", {}).get("lightgbm")
        if saved_lightgbm != package_version("lightgbm"):
            logger.warning("ranker model %s was saved with lightgbm %s, running %s", manifest["version"], saved_lightgbm, package_version("lightgbm"))
        return cls(booster, manifest)

    def score_features(self, matrix: np.ndarray) -> np.ndarray:
        """Scores of a ``(n, len(feature_names))`` matrix (e.g. logged features, for replay and gating)."""
        if matrix.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self._booster.predict(matrix), dtype=np.float64)

    def rank(self, query: Query, candidates: Sequence[Candidate], facts: Mapping[str, EntityFacts]) -> list[Scored]:
        matrix = build_features(query, candidates, facts, self.strategies)
        scores = self.score_features(matrix)
        scored = [
            Scored(candidate.entity_id, float(score), tuple(row.tolist()))
            for candidate, score, row in zip(candidates, scores, matrix, strict=True)
        ]
        scored.sort(key=lambda item: (-item.score, item.entity_id))
        return scored
