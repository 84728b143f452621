"""The contextual bandit over plans: Vowpal Wabbit ``--cb_explore_adf`` (epsilon-greedy over a
doubly-robust/MTR cost regressor with context x action interactions).

VW gives the probability mass function over the plans offered; the plan is sampled from it with this
policy's own seeded ``numpy`` generator, so a run is reproducible from its seed. Learning uses VW's
contextual-bandit label ``0:cost:probability`` on the chosen action with ``cost = -reward``.

Saved as a directory: ``model.vw`` (the VW regressor, with its options) and ``manifest.json``.
"""

from __future__ import annotations

import logging
import math
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Sequence

import numpy as np
import pylibvw
import vowpalwabbit

from bandit.base import decide
from bandit.features import encode
from contracts import ArtifactError, BadRequest, ConfigError, Context, Decision, Plan
from contracts.artifacts import (
    MANIFEST_FILE,
    read_manifest,
    sha256_of,
    verify_checksum,
    write_manifest,
)

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
MODEL_FILE = "model.vw"
DEFAULT_ARGS = "--cb_explore_adf --cb_type mtr -q CA --power_t 0 --quiet"
# How VW explores, on top of (or, for cover and squarecb, instead of) --epsilon: epsilon-greedy alone,
# bootstrap bagging of 5 policies, online cover of 5, or SquareCB's inverse-gap weighting.
EXPLORATIONS = {"epsilon": "", "bag": "--bag 5", "cover": "--cover 5", "squarecb": "--squarecb"}
DEFAULT_EXPLORATION = "bag"
_EXPLORATION_OPTIONS = ("--bag", "--cover", "--squarecb", "--first", "--softmax", "--rnd", "--regcb", "--regcbopt", "--synthcover")


class VWPolicy:
    """``Policy`` backed by a VW workspace.

    ``args`` are VW options without ``--epsilon`` (given separately) or ``--random_seed`` (``seed``);
    ``plans`` optionally records the plan space in the manifest.

    ``exploration`` names VW's exploration (``EXPLORATIONS``; baked into the saved model). ``probability_floor``
    is the least probability any offered plan gets (at most 1 / plans: uniform): a distribution with a plan
    below it is mixed with the uniform one just enough to lift it there (and left as it is otherwise), so
    every plan keeps being tried and every importance weight stays below 1 / floor. The logged distribution
    is the final one. The floor is a serving transform: the caller may set it on a loaded policy.

    ``explore_halflife`` > 0 adds warm-up exploration on top of VW's epsilon: the distribution is mixed
    with the uniform one at weight ``0.5 ** (updates / explore_halflife)``, so a new policy chooses
    uniformly and settles into VW's own distribution as it learns. A plan whose worth shows only later (a
    large plan whose clicks fill the memory index for the next time the query comes) gets tried while
    that is cheap. The logged probability is the mixed one. ``version`` is ``vw-<updates>`` while
    learning and ``vw-<updates>-<sha256 of model.vw>[:8]`` once saved or loaded.
    """

    def __init__(
        self,
        seed: int,
        epsilon: float = 0.05,
        args: str = DEFAULT_ARGS,
        plans: Sequence[Plan] = (),
        explore_halflife: int = 0,
        exploration: str = DEFAULT_EXPLORATION,
        probability_floor: float = 0.0,
        _model_file: Path | None = None,
    ) -> None:
        if isinstance(explore_halflife, bool) or not isinstance(explore_halflife, int) or explore_halflife < 0:
            raise ConfigError.about("explore_halflife", f"expected a whole number of updates >= 0 (0: no warm-up), got {explore_halflife!r}")
        if not 0 <= epsilon <= 1:
            raise ConfigError.about("epsilon", f"expected a probability in [0, 1], got {epsilon!r}")
        if "--epsilon" in args or "--random_seed" in args:
            raise ConfigError.about("args", f"pass epsilon and seed separately, not inside {args!r}")
        if not 0 <= probability_floor < 1:
            raise ConfigError.about("probability_floor", f"expected a probability in [0, 1) (above 1 / plans it means uniform), got {probability_floor!r}")
        if _model_file is None:
            if exploration not in EXPLORATIONS:
                raise ConfigError.about("exploration", f"expected one of {', '.join(EXPLORATIONS)}, got {exploration!r}")
            inside = [option for option in _EXPLORATION_OPTIONS if option in {token.split("=", 1)[0] for token in args.split()}]
            if inside:
                raise ConfigError.about("args", f"{' '.join(inside)} inside {args!r}: choose the exploration separately, not inside the VW options")
        self.seed = seed
        self.epsilon = epsilon
        self.args = args
        self.plans = tuple(plans)
        self.explore_halflife = explore_halflife
        self.exploration = exploration
        self.probability_floor = probability_floor
        self.n_updates = 0
        command = " ".join(part for part in (args, EXPLORATIONS.get(exploration, ""), f"--epsilon {epsilon!r} --random_seed {seed}") if part)
        if _model_file is not None:
            command = f"-i {_model_file} --quiet"
        try:
            self._workspace = vowpalwabbit.Workspace(command)
        except Exception as error:  # the native layer raises plain RuntimeError/Exception on bad options or files
            raise ConfigError.about("args", f"Vowpal Wabbit rejected {command!r}: {error}") from error
        self.version = "vw-0"

    def distribution(self, context: Context, plans: Sequence[Plan]) -> tuple[float, ...]:
        return tuple(float(p) for p in self._pmf(context, plans))

    def _pmf(self, context: Context, plans: Sequence[Plan]) -> np.ndarray:
        if not plans:
            raise ConfigError.about("plans", "the policy was offered no plans; offer at least one")
        pmf = np.asarray(self._workspace.predict(encode(context, plans)), dtype=np.float64)
        if pmf.shape != (len(plans),) or not np.all(np.isfinite(pmf)) or pmf.sum() <= 0:
            raise ArtifactError(f"the VW model ({self.version}) returned an invalid distribution {pmf!r}; retrain it")
        pmf = pmf / pmf.sum()
        if self.explore_halflife:
            uniform_share = 0.5 ** (self.n_updates / self.explore_halflife)
            pmf = (1.0 - uniform_share) * pmf + uniform_share / len(pmf)
        floor = min(self.probability_floor, 1.0 / len(pmf))
        lowest = float(pmf.min())
        if lowest < floor:
            uniform_share = (floor - lowest) / (1.0 / len(pmf) - lowest)  # the least mix that lifts the lowest plan to the floor
            pmf = (1.0 - uniform_share) * pmf + uniform_share / len(pmf)
        return pmf

    def choose(self, context: Context, plans: Sequence[Plan], draw: float) -> Decision:
        plans = tuple(plans)
        return decide(plans, tuple(float(p) for p in self._pmf(context, plans)), draw, self.version)

    def learn(self, context: Context, decision: Decision, reward: float) -> None:
        if not math.isfinite(reward):
            raise ConfigError(f"reward: expected a finite number, got {reward!r}; check the reward weights and cost")
        if not 0 < decision.probability <= 1:
            raise ConfigError(f"decision.probability: expected (0, 1], got {decision.probability!r}; was it logged?")
        example = encode(context, decision.plans, decision.index, cost=-reward, probability=decision.probability)
        # What Workspace.learn does with strings, without a Python wrapper object per line (3x faster for
        # 26 plans; the same model bytes, which a test checks).
        parsed = self._workspace._parse("\n".join(example).strip())
        try:
            pylibvw.vw.learn_multi(self._workspace, parsed)
        finally:
            pylibvw.vw._finish_example_multi_ex(self._workspace, parsed)
        self.n_updates += 1
        self.version = f"vw-{self.n_updates}"

    def save(self, directory: Path) -> None:
        """Write ``model.vw`` and ``manifest.json`` into ``directory`` (created if missing)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        model_path = directory / MODEL_FILE
        self._workspace.save(str(model_path))
        digest = sha256_of(model_path)
        self.version = f"vw-{self.n_updates}-{digest[:8]}"
        manifest = {
            "format": MANIFEST_FORMAT,
            "kind": "vw",
            "version": self.version,
            "model_sha256": digest,
            "vw_args": self.args,
            "epsilon": self.epsilon,
            "explore_halflife": self.explore_halflife,
            "exploration": self.exploration,
            "probability_floor": self.probability_floor,
            "seed": self.seed,
            "n_updates": self.n_updates,
            "plans": [plan.name for plan in self.plans],
            "libraries": {"vowpalwabbit": package_version("vowpalwabbit"), "numpy": np.__version__},
        }
        write_manifest(directory, manifest)
        logger.info("saved bandit policy %s to %s", self.version, directory)

    @classmethod
    def load(cls, directory: Path, seed: int) -> VWPolicy:
        """Load a saved policy; ``seed`` seeds the sampling generator of this process.

        Raises ``ArtifactError`` when the directory, a file or a manifest field is missing, the model file
        does not match the manifest's checksum, or VW cannot read it.
        """
        directory = Path(directory)
        manifest_path, model_path = directory / MANIFEST_FILE, directory / MODEL_FILE
        manifest = read_manifest(directory, "bandit model", "load a directory written by VWPolicy.save, or retrain", [MODEL_FILE])
        try:
            version, digest = manifest["version"], manifest["model_sha256"]
            args, epsilon, n_updates = manifest["vw_args"], float(manifest["epsilon"]), int(manifest["n_updates"])
            explore_halflife = int(manifest.get("explore_halflife", 0))
            # Manifests from before these settings: the exploration was inside vw_args, and there was no floor.
            exploration = str(manifest.get("exploration", "in vw_args"))
            probability_floor = float(manifest.get("probability_floor", 0.0))
            plans = tuple(Plan.parse(name) for name in manifest["plans"])
        except (ValueError, KeyError, TypeError, BadRequest) as error:
            raise ArtifactError(f"bandit model: {manifest_path} is not a valid manifest ({error!r}); retrain and save again") from error
        if manifest.get("kind") != "vw" or manifest.get("format") != MANIFEST_FORMAT:
            raise ArtifactError(f"bandit model: {manifest_path} has kind={manifest.get('kind')!r} format={manifest.get('format')!r}, expected kind='vw' format={MANIFEST_FORMAT}; retrain with this version")
        verify_checksum(model_path, digest, "bandit model")
        saved_vw = manifest.get("libraries", {}).get("vowpalwabbit")
        if saved_vw != package_version("vowpalwabbit"):
            logger.warning("bandit model %s was saved with vowpalwabbit %s, running %s", version, saved_vw, package_version("vowpalwabbit"))
        try:
            policy = cls(seed, epsilon=epsilon, args=args, plans=plans, explore_halflife=explore_halflife, exploration=exploration,
                         probability_floor=probability_floor, _model_file=model_path)
        except ConfigError as error:
            raise ArtifactError(f"bandit model: Vowpal Wabbit cannot read {model_path} ({error}); retrain and save again") from error
        policy.n_updates = n_updates
        policy.version = version
        return policy
