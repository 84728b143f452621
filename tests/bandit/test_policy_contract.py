"""One contract suite for every Policy (VW, uniform, fixed), then VW-specific learning and persistence."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from bandit import FixedPlanPolicy, Policy, UniformPolicy, VWPolicy, plan_space
from contracts import ArtifactError, ConfigError, Context, Plan, choose_index

PLANS = plan_space(["lexical", "dense", "memory"])
DRAWS = np.random.default_rng(2024)


def _draw() -> float:
    return float(DRAWS.random())
CONTEXT = Context({"user_type=a": 1.0, "query_tokens": 2.0})


@pytest.fixture(params=["vw", "uniform", "fixed"])
def policy(request) -> Policy:
    if request.param == "vw":
        return VWPolicy(seed=3)
    if request.param == "uniform":
        return UniformPolicy()
    return FixedPlanPolicy(Plan.of({"dense": 0, "lexical": 100, "memory": 20}))


def test_implements_protocol(policy):
    assert isinstance(policy, Policy)
    assert isinstance(policy.version, str) and policy.version


def test_decision_is_consistent_with_distribution(policy):
    decision = policy.choose(CONTEXT, PLANS, _draw())
    assert decision.plans == PLANS
    assert decision.plans[decision.index] == decision.plan
    assert decision.probability == decision.distribution[decision.index] > 0
    assert sum(decision.distribution) == pytest.approx(1.0)
    assert decision.distribution == pytest.approx(policy.distribution(CONTEXT, PLANS))
    assert decision.policy_version == policy.version


def test_learn_accepts_its_own_decisions(policy):
    for _ in range(5):
        decision = policy.choose(CONTEXT, PLANS, _draw())
        policy.learn(CONTEXT, decision, reward=1.0)
    assert sum(policy.distribution(CONTEXT, PLANS)) == pytest.approx(1.0)


def test_no_plans_is_a_config_error(policy):
    with pytest.raises(ConfigError, match="^plans: "):
        policy.choose(CONTEXT, (), _draw())


def test_save_writes_a_manifest(policy, tmp_path):
    policy.save(tmp_path / "saved")
    assert (tmp_path / "saved" / "manifest.json").is_file()


def test_uniform_distribution_is_equal():
    assert UniformPolicy().distribution(CONTEXT, PLANS) == (1 / 26,) * 26
    draws = np.linspace(0.0, 0.999, 52)
    assert [UniformPolicy().choose(CONTEXT, PLANS, float(draw)).index for draw in draws] == [int(draw * 26) for draw in draws]


@pytest.mark.parametrize(
    ("distribution", "draw", "index"),
    [((0.5, 0.5), 0.0, 0), ((0.5, 0.5), 0.4999, 0), ((0.5, 0.5), 0.5, 1), ((0.0, 1.0), 0.0, 1),
     ((0.2, 0.0, 0.8), 0.2, 2), ((0.3, 0.3, 0.3999999), 0.9999999, 2), ((0.25, 0.25, 0.25, 0.25), 0.75, 3)],
)
def test_the_chosen_plan_is_the_first_whose_cumulative_probability_exceeds_the_draw(distribution, draw, index):
    assert choose_index(distribution, draw) == index


def test_every_policy_chooses_what_its_draw_says(policy):
    for draw in np.linspace(0.0, 0.999, 40):
        decision = policy.choose(CONTEXT, PLANS, float(draw))
        assert decision.draw == float(draw)
        assert decision.index == choose_index(decision.distribution, decision.draw)


def test_fixed_policy_puts_all_mass_on_its_plan():
    plan = Plan.of({"dense": 100, "lexical": 0, "memory": 0})
    decision = FixedPlanPolicy(plan).choose(CONTEXT, PLANS, _draw())
    assert (decision.plan, decision.probability) == (plan, 1.0)
    assert sum(decision.distribution) == 1.0 and decision.distribution[decision.index] == 1.0
    with pytest.raises(ConfigError, match="^plan: .* is not among the"):
        FixedPlanPolicy(Plan.of({"other": 20})).choose(CONTEXT, PLANS, _draw())


def _simulated_reward(user_type: str, plan: Plan, rng: np.random.Generator) -> float:
    """Users of type a are served by lexical, type b by dense; every candidate costs 0.005."""
    target = "lexical" if user_type == "a" else "dense"
    return plan.quota(target) / 100 - 0.005 * plan.total + rng.normal(0.0, 0.1)


def test_vw_learns_the_best_plan_per_context():
    policy = VWPolicy(seed=11, epsilon=0.05)
    rng = np.random.default_rng(11)
    for _ in range(2000):
        user_type = "a" if rng.random() < 0.5 else "b"
        context = Context({f"user_type={user_type}": 1.0})
        decision = policy.choose(context, PLANS, _draw())
        policy.learn(context, decision, _simulated_reward(user_type, decision.plan, rng))
    for user_type, best in (("a", {"lexical": 100}), ("b", {"dense": 100})):
        distribution = policy.distribution(Context({f"user_type={user_type}": 1.0}), PLANS)
        greedy = PLANS[int(np.argmax(distribution))]
        assert greedy == Plan.of({"dense": 0, "lexical": 0, "memory": 0, **best})
        # --bag 5: the greedy plan holds (1 - epsilon) * (share of the 5 bags voting for it) + epsilon / 26.
        assert max(distribution) >= (1 - 0.05) * 3 / 5 + 0.05 / 26 - 1e-9, "most bags agree on the best plan"
    assert policy.version == "vw-2000"


@pytest.mark.parametrize("exploration", ["epsilon", "bag", "cover", "squarecb"])
def test_every_exploration_learns_the_best_plan_per_context_and_keeps_the_floor(exploration, tmp_path):
    """Each exploration algorithm VW offers here finds each context's best plan, and no plan ever falls below
    the floor, however sure the model is (epsilon 0.05 spreads about 0.002 a plan over 26: the floor of
    0.01 is what keeps the other plans alive)."""
    floor = 0.01
    policy = VWPolicy(seed=11, epsilon=0.05, exploration=exploration, probability_floor=floor, plans=PLANS)
    rng = np.random.default_rng(11)
    draws = np.random.default_rng(12)
    lowest = 1.0
    for _ in range(2000):
        user_type = "a" if rng.random() < 0.5 else "b"
        context = Context({f"user_type={user_type}": 1.0})
        decision = policy.choose(context, PLANS, float(draws.random()))
        lowest = min(lowest, min(decision.distribution))
        assert sum(decision.distribution) == pytest.approx(1.0)
        policy.learn(context, decision, _simulated_reward(user_type, decision.plan, rng))
    assert lowest >= floor - 1e-12, f"{exploration}: a plan fell to {lowest}"
    if exploration == "epsilon":  # epsilon-greedy leaves the other plans 0.05 / 26 each: the floor lifts them
        assert lowest == pytest.approx(floor)
    for user_type, target in (("a", "lexical"), ("b", "dense")):
        distribution = policy.distribution(Context({f"user_type={user_type}": 1.0}), PLANS)
        greedy = PLANS[int(np.argmax(distribution))]
        # The best plan is target=100 alone (reward 0.5); target=100 with 20 more costs 0.1 (one noise SD).
        assert greedy.quota(target) == 100 and greedy.total <= 120, f"{exploration}, {user_type}: {greedy.name}"
    policy.save(tmp_path / "policy")
    manifest = json.loads((tmp_path / "policy" / "manifest.json").read_text())
    assert manifest["exploration"] == exploration and manifest["probability_floor"] == floor
    loaded = VWPolicy.load(tmp_path / "policy", seed=0)
    assert loaded.distribution(CONTEXT, PLANS) == pytest.approx(policy.distribution(CONTEXT, PLANS))
    assert min(loaded.distribution(CONTEXT, PLANS)) >= floor - 1e-12, "the floor is kept across a reload"


def test_the_floor_mixes_only_a_distribution_that_falls_below_it():
    """A distribution whose every plan is at or above the floor is served as VW gives it (the defaults:
    epsilon 0.1 over 26 plans already gives each 0.0038 > 0.002), so the floor changes nothing there."""
    plain = VWPolicy(seed=4, epsilon=0.1, plans=PLANS)
    floored = VWPolicy(seed=4, epsilon=0.1, probability_floor=0.002, plans=PLANS)
    rng = np.random.default_rng(4)
    for _ in range(300):
        context = Context({"query_tokens": float(rng.integers(1, 4))})
        decision = plain.choose(context, PLANS, _draw())
        assert floored.distribution(context, PLANS) == plain.distribution(context, PLANS)
        reward = float(rng.random())
        plain.learn(context, decision, reward)
        floored.learn(context, decision, reward)


def test_exploration_and_floor_errors_name_the_parameter():
    with pytest.raises(ConfigError, match=r"^exploration: expected one of epsilon, bag, cover, squarecb, got 'softmax'"):
        VWPolicy(seed=0, exploration="softmax")
    with pytest.raises(ConfigError, match=r"^args: --bag inside .*choose the exploration separately"):
        VWPolicy(seed=0, args="--cb_explore_adf --bag 5 --quiet")
    with pytest.raises(ConfigError, match=r"^probability_floor: expected a probability in \[0, 1\)"):
        VWPolicy(seed=0, probability_floor=1.0)
    # Above 1 / plans the floor can only mean uniform (26 plans x 0.05 > 1): served as such, not refused.
    assert VWPolicy(seed=0, probability_floor=0.05).distribution(CONTEXT, PLANS) == pytest.approx((1 / len(PLANS),) * len(PLANS))
    with pytest.raises(ConfigError, match=r"^args: --bag inside"):
        VWPolicy(seed=0, args="--cb_explore_adf --bag=5 --quiet")


def test_vw_warm_up_starts_uniform_and_halves_every_halflife(tmp_path):
    halflife = 200
    warm = VWPolicy(seed=11, epsilon=0.05, explore_halflife=halflife)
    plain = VWPolicy(seed=11, epsilon=0.05)
    context = Context({"user_type=a": 1.0})
    assert warm.distribution(context, PLANS) == pytest.approx([1 / len(PLANS)] * len(PLANS))
    rng = np.random.default_rng(11)
    for _ in range(2 * halflife):
        for policy in (warm, plain):
            decision = policy.choose(context, PLANS, _draw())
            assert decision.probability == decision.distribution[decision.index]
            policy.learn(context, decision, _simulated_reward("a", decision.plan, rng))
    # After two half-lives a quarter of the mass is still uniform: every plan keeps at least 1/4 of 1/K.
    assert min(warm.distribution(context, PLANS)) >= 0.25 / len(PLANS) - 1e-9
    assert min(plain.distribution(context, PLANS)) < 0.25 / len(PLANS)
    warm.save(tmp_path / "warm")
    loaded = VWPolicy.load(tmp_path / "warm", seed=11)
    assert loaded.explore_halflife == halflife
    assert loaded.distribution(context, PLANS) == pytest.approx(warm.distribution(context, PLANS))
    with pytest.raises(ConfigError, match="^explore_halflife: "):
        VWPolicy(seed=0, explore_halflife=-1)


def test_vw_save_load_round_trip(tmp_path):
    policy = VWPolicy(seed=5, plans=PLANS)
    rng = np.random.default_rng(5)
    for _ in range(50):
        decision = policy.choose(CONTEXT, PLANS, _draw())
        policy.learn(CONTEXT, decision, rng.normal())
    policy.save(tmp_path / "model")
    loaded = VWPolicy.load(tmp_path / "model", seed=5)
    assert loaded.distribution(CONTEXT, PLANS) == policy.distribution(CONTEXT, PLANS)
    assert loaded.version == policy.version and loaded.version.startswith("vw-50-")
    assert loaded.plans == PLANS and loaded.n_updates == 50
    decision = loaded.choose(CONTEXT, PLANS, _draw())
    loaded.learn(CONTEXT, decision, 1.0)  # a loaded model keeps learning
    assert loaded.version == "vw-51"


def test_vw_load_errors_say_what_to_do(tmp_path):
    with pytest.raises(ArtifactError, match="missing"):
        VWPolicy.load(tmp_path / "nothing", seed=0)
    VWPolicy(seed=0).save(tmp_path / "model")
    model = tmp_path / "model" / "model.vw"
    model.write_bytes(model.read_bytes()[:20])
    with pytest.raises(ArtifactError, match="checksum"):
        VWPolicy.load(tmp_path / "model", seed=0)
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    manifest["model_sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
    (tmp_path / "model" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="cannot read"):
        VWPolicy.load(tmp_path / "model", seed=0)
    (tmp_path / "model" / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="manifest"):
        VWPolicy.load(tmp_path / "model", seed=0)


def test_vw_learning_writes_the_same_model_as_vowpalwabbits_own_learn(tmp_path):
    import vowpalwabbit

    from bandit.features import encode
    from bandit.vw_policy import DEFAULT_ARGS, DEFAULT_EXPLORATION, EXPLORATIONS

    policy = VWPolicy(seed=5, epsilon=0.1)
    reference = vowpalwabbit.Workspace(f"{DEFAULT_ARGS} {EXPLORATIONS[DEFAULT_EXPLORATION]} --epsilon 0.1 --random_seed 5")
    rng = np.random.default_rng(9)
    for _ in range(300):
        context = Context({"query_tokens": float(rng.integers(1, 5)), "slot=genre": float(rng.random() < 0.5)})
        decision = policy.choose(context, PLANS, float(rng.random()))
        reference.predict(encode(context, PLANS))  # as choose does: a prediction moves VW's state too
        reward = float(rng.random())
        policy.learn(context, decision, reward)
        reference.learn(encode(context, decision.plans, decision.index, cost=-reward, probability=decision.probability))
    policy.save(tmp_path / "policy")
    reference.save(str(tmp_path / "reference.vw"))
    assert (tmp_path / "policy" / "model.vw").read_bytes() == (tmp_path / "reference.vw").read_bytes()
