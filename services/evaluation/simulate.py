"""``ltrr simulate``: the closed loop on the demo catalog, driven through the same ``Pipeline`` the API uses.

Each run replays the same query stream (same seed) with the same learning loop (memory index, bandit
and ranker learning through in-process ingestion every ``ingest_every`` requests); runs differ only in
the plan policy: the learned VW policy, uniform random, and fixed plans. Time is simulated (20 s
between queries) so attribution windows close in event time exactly as when replaying a log.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import queue as queue_module
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from catalog.schema import Entity
from contracts import Plan
from contracts.artifacts import ModelStore
from memory_index.local_store import LocalMemoryStore
from retrievers.base import Retriever
from retrievers.embedding import Embedder, TextEncoder
from retrievers.understanding import Gazetteer
from services.evaluation.sim_users import QueryStream, simulate_user
from services.eventlog import EventLog
from services.ingest.ingestor import join_rounds
from services.ingest.jobs import ingest_job
from services.registry import (
    Paths,
    fallback_strategies,
    load_catalog,
    local_store,
    make_policy,
    make_ranker,
    open_retrievers,
    plans_from,
    reward_config,
)
from services.search.catalog_changes import cold_start, entity_facts
from services.search.indexing import ProgressFactory, build_indexes, indexes_exist
from services.search.ledger import LocalLedger
from services.search.pipeline import Pipeline
from services.settings import Settings
from services.user_ids import synthetic_ids

logger = logging.getLogger(__name__)

WINDOW = 1000
START_TIME = 1_767_225_600.0  # 2026-01-01T00:00:00Z
SECONDS_BETWEEN_QUERIES = 20.0
SIMULATION_TIMEOUT_S = 10.0  # generous, so a slow moment on a busy machine never changes a run's outcome


@dataclass(frozen=True, slots=True)
class RunSpec:
    name: str
    policy: str  # "vw", "uniform" or a plan name


def run_specs(settings: Settings, baselines: bool) -> list[RunSpec]:
    specs = [RunSpec("learned", "vw")]
    if baselines:
        specs.append(RunSpec("uniform", "uniform"))
        strategies = sorted(settings.strategies)
        top = max(settings.plan_levels)
        for strategy in strategies:
            specs.append(RunSpec(f"{strategy}={top}", Plan.of({s: top if s == strategy else 0 for s in strategies}).name))
        specs.append(RunSpec(f"all={top}", Plan.of({s: top for s in strategies}).name))
    return specs


def _run_settings(settings: Settings, spec: RunSpec, run_dir: Path) -> Settings:
    """The settings of one run: its own data directory and the spec's policy (a plan name means fixed)."""
    policy = spec.policy if spec.policy in ("vw", "uniform") else f"fixed:{spec.policy}"
    return settings.model_copy(update={"data_dir": run_dir, "policy": policy})


def run_directory_name(run: str, plan_seed: int | None = None) -> str:
    """The folder of a run under ``simulations/seed<seed>/``: its name (``=`` as ``_``), and its plan stream."""
    return run.replace("=", "_") + ("" if plan_seed is None else f"_plans{plan_seed}")


def run_one(
    settings: Settings,
    spec: RunSpec,
    queries: int,
    seed: int,
    ingest_every: int,
    report: Callable[[int], None] | None = None,
    embedder: Embedder | None = None,
    plan_seed: int | None = None,
) -> dict[str, Any]:
    """One closed-loop run; returns per-query rewards (in query order) and per-kind means.

    ``plan_seed`` seeds the run's own choices (the plan draws, the bandit's bootstraps, the exploring
    retrievers) instead of ``seed``, while the queries and the users stay on ``seed``: another random path
    of the loop over the same traffic. Its runs go to ``<name>_plans<plan_seed>``."""
    run_dir = settings.data_dir / "simulations" / f"seed{seed}" / run_directory_name(spec.name, plan_seed)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_settings = _run_settings(settings, spec, run_dir)
    entities = load_catalog(settings)
    clock_now = [START_TIME]
    pipeline, retrievers, memory = open_run_pipeline(settings, run_settings, entities, embedder, seed if plan_seed is None else plan_seed, clock_now)
    job = ingest_job(run_settings, pipeline)
    stream = QueryStream(entities, seed)
    kinds: list[str] = []
    try:
        for index in range(queries):
            intent = stream.draw(index)
            kinds.append(intent.kind)
            now = START_TIME + SECONDS_BETWEEN_QUERIES * index
            clock_now[0] = now
            outcome = pipeline.search(intent.text, k=10, user_id=intent.user_id, session_id=intent.session_id, timestamp=now)
            page = [item.entity_id for item in outcome.results]
            for engagement in simulate_user(page, intent.targets, np.random.default_rng([seed, index, 7])):
                pipeline.feedback(outcome.request_id, engagement.entity_id, engagement.event.value, engagement.position, now + engagement.delay_s)
            if (index + 1) % ingest_every == 0:
                job.run()
            if report is not None and ((index + 1) % 25 == 0 or index + 1 == queries):
                report(index + 1)
        job.run(flush=True)
    finally:
        close_run_pipeline(pipeline, retrievers)
    rounds, _ = join_rounds(Paths(run_dir).events / "events.jsonl", reward_config(settings))
    rewards = [r.reward for r in rounds]
    by_kind: dict[str, list[float]] = {}
    plan_by_kind: dict[str, dict[str, int]] = {}
    tail = max(0, len(rounds) - WINDOW)
    for position, (kind, logged) in enumerate(zip(kinds, rounds, strict=True)):
        by_kind.setdefault(kind, []).append(logged.reward)
        if position >= tail:
            counts = plan_by_kind.setdefault(kind, {})
            counts[logged.decision.plan.name] = counts.get(logged.decision.plan.name, 0) + 1
    return {
        "name": spec.name,
        "rewards": rewards,
        "by_kind": {kind: float(np.mean(values)) for kind, values in sorted(by_kind.items())},
        "last_window_plans_by_kind": plan_by_kind,
        "ranker": pipeline.ranker.version,
        "memory_half_life_s": memory.half_life_s,
    }


def open_run_pipeline(
    settings: Settings,
    run_settings: Settings,
    entities: list[Entity],
    embedder: TextEncoder | None,
    seed: int,
    clock_now: list[float],
) -> tuple[Pipeline, dict[str, Retriever], LocalMemoryStore]:
    """The pipeline of one closed-loop run: the indexes of ``settings``, an in-process memory index cold
    started from ``entities``, the run's policy and ranker (``run_settings``: its own data directory), and
    the clock ``clock_now[0]``; ``seed`` seeds its random choices."""
    run_dir = run_settings.data_dir
    memory = local_store(settings)
    cold_start(memory, entities)
    retrievers = open_retrievers(settings, memory, embedder, seed=seed)
    plans = plans_from(run_settings)
    pipeline = Pipeline(
        retrievers=retrievers,
        policy=make_policy(run_settings, plans, seed=seed),
        plans=plans,
        ranker=make_ranker(run_settings, ModelStore(Paths(run_dir).models)),
        memory=memory,
        gazetteer=Gazetteer.from_entities(entities),
        facts={entity.id: entity_facts(entity) for entity in entities},
        event_log=EventLog(Paths(run_dir).events),
        strategies=tuple(settings.strategies),
        retriever_timeout_s=SIMULATION_TIMEOUT_S,
        clock=lambda: clock_now[0],
        ledger=LocalLedger(settings.attribution_window_s),
        # The run's own seed: runs with the same seed draw the same stream (the policy does not own it).
        rng=np.random.default_rng(seed),
        hash_user=synthetic_ids,
        attribution_window_s=settings.attribution_window_s,
        fallback_strategies=fallback_strategies(settings),
        randomize_pages=settings.randomize_pages,
        strategy_history=settings.bandit_history_features,
    )
    return pipeline, retrievers, memory


def close_run_pipeline(pipeline: Pipeline, retrievers: dict[str, Retriever]) -> None:
    pipeline.close()
    pipeline.event_log.close()
    for retriever in retrievers.values():
        close = getattr(retriever, "close", None)
        if close is not None:
            close()


def windows(rewards: list[float], size: int = WINDOW) -> list[dict[str, float]]:
    """Consecutive ``size``-query slices (start inclusive, end exclusive); a partial last slice is dropped."""
    result = []
    for start in range(0, len(rewards) - size + 1, size):
        values = np.asarray(rewards[start : start + size], dtype=float)
        result.append(
            {"start": start, "end": start + size, "reward": float(values.mean()), "stderr": float(values.std(ddof=1) / math.sqrt(size))}
        )
    return result


def _demo_run(settings_values: dict[str, Any], spec: RunSpec, queries: int, seed: int, ingest_every: int,
              report: Callable[[int], None]) -> dict[str, Any]:
    return run_one(Settings(**settings_values), spec, queries, seed, ingest_every, report)


def _task(function: Callable[..., dict[str, Any]], args: tuple, name: str, progress_queue: Any) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    return function(*args, lambda done: progress_queue.put((name, done)))


def run_in_processes(
    tasks: list[tuple[str, Callable[..., dict[str, Any]], tuple]], steps: int, progress: ProgressFactory, workers: int
) -> dict[str, dict[str, Any]]:
    """Each ``(name, function, args)`` as ``function(*args, report)`` in a spawned process (``workers`` at
    once, torch on one thread each), with one progress bar over ``steps`` per task; results by name."""
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    progress_queue = manager.Queue()
    results: dict[str, dict[str, Any]] = {}
    with progress(f"{len(tasks)} runs x {steps:,} queries", len(tasks) * steps) as report:
        done_by_run = {name: 0 for name, _, _ in tasks}
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(_task, function, args, name, progress_queue): name for name, function, args in tasks}
            pending = set(futures)
            while pending:
                try:
                    name, done = progress_queue.get(timeout=0.5)
                    done_by_run[name] = done
                    report(sum(done_by_run.values()))
                except queue_module.Empty:
                    pass
                for future in [f for f in pending if f.done()]:
                    pending.discard(future)
                    results[futures[future]] = future.result()
    manager.shutdown()
    return results


def run_simulation(
    settings: Settings,
    queries: int,
    seed: int,
    ingest_every: int = 100,
    baselines: bool = True,
    progress: ProgressFactory | None = None,
    workers: int = 2,
) -> dict[str, Any]:
    if not indexes_exist(settings):
        build_indexes(settings, progress or _no_progress)
    specs = run_specs(settings, baselines)
    results: dict[str, dict[str, Any]] = {}
    if workers <= 1 or len(specs) == 1:
        embedder = Embedder(threads=1)  # as in the workers: the thread count changes float sums, hence ties
        for spec in specs:
            with (progress or _no_progress)(f"run {spec.name}", queries) as report:
                results[spec.name] = run_one(settings, spec, queries, seed, ingest_every, report, embedder)
    else:
        values = settings.model_dump()
        tasks = [(spec.name, _demo_run, (values, spec, queries, seed, ingest_every)) for spec in specs]
        results = run_in_processes(tasks, queries, progress or _no_progress, workers)
    learned = results["learned"]
    output: dict[str, Any] = {
        "queries": queries,
        "seed": seed,
        "windows": windows(learned["rewards"]),
        "learned_reward": float(np.mean(learned["rewards"])),
        "learned_by_kind": learned["by_kind"],
        "last_window_plans_by_kind": learned["last_window_plans_by_kind"],
        "final_ranker": learned["ranker"],
    }
    if baselines:
        output["uniform_random_reward"] = float(np.mean(results["uniform"]["rewards"]))
        output["fixed_plan_rewards"] = {
            spec.name: float(np.mean(results[spec.name]["rewards"])) for spec in specs if spec.name not in ("learned", "uniform")
        }
    return output


class _no_progress:
    def __init__(self, label: str, total: int) -> None:
        pass

    def __enter__(self) -> Callable[[int], None]:
        return lambda done: None

    def __exit__(self, *exc: object) -> None:
        return None
