"""``ltrr simulate --collection DIR``: the closed loop on a judged (BEIR-format) collection, in process.

The collection's corpus becomes the catalog (indexed once under ``<data_dir>/collections/<name>``, the
document embeddings cached); ``CollectionTraffic`` asks a split's judged queries again and again; a
click model (``click_models``) stands in for the users. Every run sees the same stream and the same
users (seeded per request), so runs are compared request by request. Runs: the learned loop, uniform
random plans, each fixed plan the demo simulator runs, and *static* (learning off: no ingestion, hence
no memory updates, no ranker, no bandit; lexical=100 + dense=100 fused by reciprocal rank).

Per request: the product's reward (joined from the event log as ingestion does), nDCG@10 of the served
page against the judgments, clicks, and candidates drawn (the plan's quotas plus the top-up).
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from catalog.beir import load_beir
from catalog.io import write_entities
from contracts import ConfigError, Plan
from contracts.events import Engagement
from retrievers.embedding import Embedder, TextEncoder
from services.evaluation.bench_retrieval import CachedDocumentEmbedder, embedding_cache_path
from services.evaluation.click_models import PLAY_AFTER_RELEVANT_CLICK, ClickModel
from services.evaluation.collection_traffic import CollectionTraffic, ndcg_at
from services.evaluation.simulate import (
    SECONDS_BETWEEN_QUERIES,
    START_TIME,
    RunSpec,
    _no_progress,
    close_run_pipeline,
    open_run_pipeline,
    run_in_processes,
    run_specs,
)
from services.ingest.ingestor import join_rounds
from services.ingest.jobs import ingest_job
from services.registry import Paths, load_catalog, reward_config
from services.search.indexing import ProgressFactory, build_indexes, indexes_exist
from services.settings import Settings

logger = logging.getLogger(__name__)

STATIC = "static"
METRICS = ("reward", "ndcg@10", "clicks", "drawn")


def prepare_collection(settings: Settings, collection: Path, cache_dir: Path, progress: ProgressFactory,
                       embedder: Embedder | None = None) -> Settings:
    """The settings of a loop over ``collection``: its corpus as the catalog under
    ``<data_dir>/collections/<name>``, indexed (once; document embeddings cached in ``cache_dir``)."""
    if not (collection / "corpus.jsonl").is_file():
        raise ConfigError.about("--collection", f"{collection} has no corpus.jsonl; point it at a BEIR-format folder")
    data_dir = settings.data_dir / "collections" / collection.name
    catalog = data_dir / "catalog.jsonl"
    loop_settings = settings.model_copy(update={"data_dir": data_dir, "catalog_path": catalog})
    if not indexes_exist(loop_settings):
        entities = load_beir(collection, _any_split(collection)).entities
        data_dir.mkdir(parents=True, exist_ok=True)
        write_entities(catalog, entities)
        model = embedder or Embedder()
        cached = CachedDocumentEmbedder(model, embedding_cache_path(collection, getattr(model, "model_name", "unknown"), cache_dir))
        build_indexes(loop_settings, progress, embedder=cached, entities=entities)  # type: ignore[arg-type]
    return loop_settings


def _any_split(collection: Path) -> str:
    splits = sorted(path.stem for path in (collection / "qrels").glob("*.tsv"))
    if not splits:
        raise ConfigError.about("--collection", f"{collection} has no qrels/<split>.tsv")
    return "test" if "test" in splits else splits[0]


def loop_specs(settings: Settings, baselines: bool) -> list[RunSpec]:
    """The demo simulator's runs, and static: lexical=100 + dense=100 with learning off."""
    if not baselines:
        return run_specs(settings, baselines)
    missing = {"lexical", "dense"} - set(settings.strategies)
    if missing:
        raise ConfigError.about("LTRR_STRATEGIES", f"the static baseline needs lexical and dense; {', '.join(sorted(missing))} is not configured")
    static = Plan.of({name: 100 if name in ("lexical", "dense") else 0 for name in settings.strategies})
    return run_specs(settings, baselines) + [RunSpec(STATIC, static.name)]


def run_collection_one(
    settings_values: dict[str, Any],
    spec: RunSpec,
    collection: str,
    split: str,
    requests: int,
    seed: int,
    ingest_every: int,
    click_model: dict[str, Any],
    traffic_options: dict[str, Any],
    report: Callable[[int], None] | None = None,
    embedder: TextEncoder | None = None,
) -> dict[str, Any]:
    """One run over the collection's traffic; per-request metrics in request order."""
    settings = Settings(**settings_values)
    users = ClickModel(**click_model)
    run_dir = settings.data_dir / "loops" / f"{split}-seed{seed}-{users.name}" / spec.name.replace("=", "_").replace("+", "-")
    if run_dir.exists():
        shutil.rmtree(run_dir)
    policy = spec.policy if spec.policy in ("vw", "uniform") else f"fixed:{spec.policy}"
    run_settings = settings.model_copy(update={"data_dir": run_dir, "policy": policy})
    judged = load_beir(Path(collection), split)
    traffic = CollectionTraffic(judged.queries, judged.qrels, seed, **traffic_options)
    entities = load_catalog(settings)
    clock_now = [START_TIME]
    pipeline, retrievers, _ = open_run_pipeline(settings, run_settings, entities, embedder, seed, clock_now)
    learning = spec.name != STATIC
    job = ingest_job(run_settings, pipeline) if learning else None
    ndcg: list[float] = []
    clicks: list[int] = []
    drawn: list[int] = []
    kinds: list[str] = []
    try:
        for index in range(requests):
            intent = traffic.draw(index)
            now = START_TIME + SECONDS_BETWEEN_QUERIES * index
            clock_now[0] = now
            outcome = pipeline.search(intent.text, k=10, user_id=intent.user_id, session_id=intent.session_id, timestamp=now)
            page = [item.entity_id for item in outcome.results]
            rng = np.random.default_rng([seed, index, 7])
            positions = users.clicks(page, intent.grades, traffic.max_grade, rng)
            for position in positions:
                entity_id = page[position - 1]
                pipeline.feedback(outcome.request_id, entity_id, Engagement.CLICK.value, position, now + 2.0 + position)
                if intent.grades.get(entity_id, 0) > 0 and rng.random() < PLAY_AFTER_RELEVANT_CLICK:
                    pipeline.feedback(outcome.request_id, entity_id, Engagement.PLAY.value, position, now + 30.0)
            ndcg.append(ndcg_at(page, intent.grades, intent.query_id))
            clicks.append(len(positions))
            plan = outcome.decision.plan  # charged as ingest charges it: a skipped strategy drew nothing
            drawn.append(plan.total - sum(plan.quota(name) for name in outcome.skipped) + len(outcome.fallback))
            kinds.append(intent.kind)
            if job is not None and (index + 1) % ingest_every == 0:
                job.run()
            if report is not None and ((index + 1) % 25 == 0 or index + 1 == requests):
                report(index + 1)
        if job is not None:
            job.run(flush=True)
    finally:
        close_run_pipeline(pipeline, retrievers)
    rounds, _ = join_rounds(Paths(run_dir).events / "events.jsonl", reward_config(settings))
    if len(rounds) != requests:
        raise RuntimeError(f"{spec.name}: {len(rounds)} logged rounds for {requests} requests")
    return {
        "name": spec.name,
        "reward": [r.reward for r in rounds],
        "ndcg@10": ndcg,
        "clicks": clicks,
        "drawn": drawn,
        "kinds": kinds,
        "plans": [r.decision.plan.name for r in rounds],
    }


def _mean_se(values: np.ndarray) -> dict[str, float]:
    """Mean and standard error of the finite values (over HTTP a request the service did not answer has a
    NaN reward: it is left out of the reward, and counted in the run's errors)."""
    values = values[np.isfinite(values)]
    if not len(values):
        return {"mean": math.nan, "se": math.nan}
    return {"mean": float(values.mean()), "se": float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0}


def summarize(runs: dict[str, dict[str, Any]], window: int) -> dict[str, Any]:
    """Per run and window: each metric's mean and standard error; the last window's paired differences
    (learned minus each other run, same requests) with 95% intervals."""
    summary: dict[str, Any] = {"window": window, "runs": {}, "last_window_differences": {}}
    for name, run in runs.items():
        count = len(run["reward"])
        run_windows = []
        for start in range(0, count - window + 1, window):
            entry: dict[str, Any] = {"start": start, "end": start + window}
            for metric in METRICS:
                entry[metric] = _mean_se(np.asarray(run[metric][start : start + window], dtype=float))
            run_windows.append(entry)
        last_start = (count // window - 1) * window  # the last full window, as in the table
        head = [i for i in range(last_start, last_start + window) if run["kinds"][i] == "head"]
        summary["runs"][name] = {
            "windows": run_windows,
            "last_window_head_ndcg@10": _mean_se(np.asarray([run["ndcg@10"][i] for i in head], dtype=float)) if head else None,
        }
    learned = runs.get("learned")
    if learned is not None:
        last_start = (len(learned["reward"]) // window - 1) * window
        tail = slice(last_start, last_start + window)
        for name, run in runs.items():
            if name == "learned":
                continue
            differences = {}
            for metric in METRICS:
                diff = np.asarray(learned[metric][tail], dtype=float) - np.asarray(run[metric][tail], dtype=float)
                stats = _mean_se(diff)
                stats["low95"], stats["high95"] = stats["mean"] - 1.96 * stats["se"], stats["mean"] + 1.96 * stats["se"]
                differences[metric] = stats
            summary["last_window_differences"][name] = differences
    return summary


def _checked_judgments(collection: Path, split: str, requests: int, window: int, seed: int, options: dict[str, Any]) -> Any:
    """The split's judgments, once the loop's options are known to be valid (before any run starts)."""
    if window > requests:
        raise ConfigError.about("--window", f"{window} is more than the {requests} requests; choose a window of at most --requests")
    judged = load_beir(collection, split)
    CollectionTraffic(judged.queries, judged.qrels, seed, **options)
    return judged


def _header(collection: Path, split: str, requests: int, seed: int, users: ClickModel, options: dict[str, Any]) -> dict[str, Any]:
    return {"collection": collection.name, "split": split, "requests": requests, "seed": seed, "click_model": asdict(users), "traffic": options}


def run_collection_loop(
    settings: Settings,
    collection: Path,
    split: str = "test",
    requests: int = 4000,
    seed: int = 1,
    ingest_every: int = 100,
    click_model: ClickModel | None = None,
    sample: int = 300,
    zipf: float = 1.0,
    session_mean: float = 3.0,
    baselines: bool = True,
    window: int = 500,
    cache_dir: Path = Path("results/cache"),
    progress: ProgressFactory | None = None,
    workers: int = 2,
) -> dict[str, Any]:
    progress = progress or _no_progress
    users = click_model or ClickModel()
    options: dict[str, Any] = {"sample": sample, "zipf": zipf, "session_mean": session_mean}
    _checked_judgments(collection, split, requests, window, seed, options)
    loop_settings = prepare_collection(settings, collection, cache_dir, progress)
    specs = loop_specs(loop_settings, baselines)
    values = loop_settings.model_dump()
    args = [(spec.name, run_collection_one, (values, spec, str(collection), split, requests, seed, ingest_every, asdict(users), options))
            for spec in specs]
    if workers <= 1:
        embedder = Embedder(threads=1)
        runs = {}
        for name, function, arguments in args:
            with progress(f"run {name}", requests) as report:
                runs[name] = function(*arguments, report, embedder)
    else:
        runs = run_in_processes(args, requests, progress, workers)
    return {
        **_header(collection, split, requests, seed, users, options),
        "plans": {spec.name: spec.policy for spec in specs},
        **summarize(runs, window),
    }



def run_collection_over_http(
    settings: Settings,
    collection: Path,
    urls: list[str],
    split: str = "test",
    requests: int = 4000,
    seed: int = 1,
    click_model: ClickModel | None = None,
    sample: int = 300,
    zipf: float = 1.0,
    session_mean: float = 3.0,
    window: int = 500,
    rate: float = 5.0,
    progress: ProgressFactory | None = None,
) -> dict[str, Any]:
    """The loop's traffic and users against running services (``--url NAME=URL``, all at once, each at
    ``rate`` requests a second); the services hold the collection's corpus as their catalog. The same
    summary as the in-process loop, plus each run's errors, wall time and latency percentiles."""
    from services.evaluation.collection_http import drive_all, parse_targets

    progress = progress or _no_progress
    users = click_model or ClickModel()
    targets = parse_targets(urls)
    options: dict[str, Any] = {"sample": sample, "zipf": zipf, "session_mean": session_mean}
    judged = _checked_judgments(collection, split, requests, window, seed, options)

    def traffic() -> CollectionTraffic:
        return CollectionTraffic(judged.queries, judged.qrels, seed, sample=sample, zipf=zipf, session_mean=session_mean)

    done_by_run = {target.name: 0 for target in targets}
    with progress(f"{len(targets)} services x {requests:,} requests at {rate:g}/s", len(targets) * requests) as report:
        def count(name: str, done: int) -> None:
            done_by_run[name] = done
            report(sum(done_by_run.values()))

        runs = drive_all(targets, traffic, users, requests, seed, rate, reward_config(settings), count, settings.feedback_key)
    return {
        **_header(collection, split, requests, seed, users, options),
        "over_http": {
            "rate_per_s": rate,
            "services": {
                name: {"url": run["url"], "errors": run["errors"], "seconds": run["seconds"],
                       "max_lag_s": run["max_lag_s"], "rescheduled": run["rescheduled"],
                       "policy_versions": len(run["model_versions"]["policy"]), "ranker_versions": len(run["model_versions"]["ranker"]),
                       "model_versions": run["model_versions"],
                       "latency_ms": {f"p{q}": float(np.percentile(run["latency_ms"], q)) for q in (50, 95, 99)}}
                for name, run in runs.items()
            },
        },
        "plans": {name: "over http" for name in runs},
        **summarize(runs, window),
    }


def plot_windows(result: dict[str, Any], path: Path) -> None:
    """nDCG@10 and reward per window of every run, with ±1 standard error bands, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, run in result["runs"].items():
        ends = [entry["end"] for entry in run["windows"]]
        for axis, metric in zip(axes, ("ndcg@10", "reward"), strict=True):
            means = np.array([entry[metric]["mean"] for entry in run["windows"]])
            errors = np.array([entry[metric]["se"] for entry in run["windows"]])
            style = {"linewidth": 2.5} if name == "learned" else {"linewidth": 1.2, "alpha": 0.8}
            axis.plot(ends, means, label=name, **style)
            axis.fill_between(ends, means - errors, means + errors, alpha=0.15)
    for axis, metric in zip(axes, ("nDCG@10 of the served page", "reward"), strict=True):
        axis.set_xlabel("requests")
        axis.set_title(metric)
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    figure.suptitle(f"{result['collection']} ({result['split']}), {result['click_model']['name']} users, seed {result['seed']}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
