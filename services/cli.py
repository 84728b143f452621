"""The ``ltrr`` command: index, serve, ingest, replay, simulate, bench."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from contracts import LtrrError
from services.settings import Settings

app = typer.Typer(
    help="ltrr: learning to rank and retrieve. A bandit picks retrievers and quotas, LambdaMART ranks the union, "
    "clicks teach both. Every option also reads an LTRR_* environment variable (see README).",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)

DataDir = typer.Option(None, "--data-dir", help="Data directory (default: LTRR_DATA_DIR or ./data).")


def _settings(data_dir: Optional[Path], **overrides: object) -> Settings:
    values = {key: value for key, value in overrides.items() if value is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)


@contextlib.contextmanager
def rich_progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=os.environ.get("LTRR_NO_PROGRESS") == "1") as progress:
        task = progress.add_task(label, total=total)
        yield lambda done: progress.update(task, completed=done)


def _fail(error: Exception) -> None:
    console.print(f"[bold red]error:[/] {error}")
    raise typer.Exit(code=2)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def index(
    data_dir: Optional[Path] = DataDir,
    catalog: Optional[Path] = typer.Option(None, help="JSONL catalog to index (default: generate the demo catalog)."),
    demo_size: Optional[int] = typer.Option(None, help="Entities in the generated demo catalog (default 20,000)."),
    dense_index: Optional[str] = typer.Option(None, help="FAISS index kind: flat (exact) or hnsw."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Generate (or load) the catalog and build the lexical (tantivy) and dense (FAISS) indexes."""
    _setup_logging(verbose)
    from services.search.indexing import build_indexes

    try:
        settings = _settings(data_dir, catalog_path=catalog, demo_size=demo_size, dense_index=dense_index)
        started = time.perf_counter()
        report = build_indexes(settings, rich_progress)
    except LtrrError as error:
        _fail(error)
    console.print(f"indexed {report.entities:,} entities in {time.perf_counter() - started:.1f} s under {settings.data_dir}")


@app.command()
def serve(
    data_dir: Optional[Path] = DataDir,
    host: Optional[str] = typer.Option(None, help="Bind address (default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (default 8000)."),
    build_if_missing: bool = typer.Option(False, help="Run `ltrr index` first when the catalog or an index is missing."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Start the search service (POST /search, POST /feedback, GET /healthz, the page at /)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from services.search.indexing import build_indexes, indexes_exist
    from services.search.server import build_app

    try:
        settings = _settings(data_dir, host=host, port=port)
        if build_if_missing and not indexes_exist(settings):
            console.print(f"building the demo catalog and indexes under {settings.data_dir} (first run only)")
            build_indexes(settings, rich_progress)
        application = build_app(settings)
    except LtrrError as error:
        _fail(error)
    console.print(f"ltrr serving at http://{settings.host}:{settings.port}  (API docs at /docs)")
    uvicorn.run(application, host=settings.host, port=settings.port, log_level="info" if verbose else "warning")


@app.command()
def ingest(
    data_dir: Optional[Path] = DataDir,
    flush: bool = typer.Option(False, help="Close every open attribution window now instead of waiting for event time."),
    follow: float = typer.Option(0.0, help="Keep running, ingesting every this many seconds (0: once)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Join feedback to impressions; update the memory index, the bandit and the ranker."""
    _setup_logging(verbose)
    from services.ingest.jobs import open_ingest_job

    try:
        job = open_ingest_job(_settings(data_dir))
        while True:
            report = job.run(flush=flush)
            _print_ingest(report)
            if follow <= 0:
                break
            time.sleep(follow)
    except LtrrError as error:
        _fail(error)
    except KeyboardInterrupt:
        pass


def _print_ingest(report) -> None:
    table = Table(title="ingest")
    for column in ("lines", "malformed", "duplicates", "impressions", "feedback", "finalized", "mean reward", "ranker rows", "ranker", "policy"):
        table.add_column(column)
    table.add_row(
        str(report.lines), str(report.malformed), str(report.duplicates), str(report.impressions), str(report.feedback),
        str(report.finalized), f"{report.mean_reward:.3f}", str(report.training_rows), report.ranker, report.policy,
    )
    Console().print(table)
    for error in report.errors[:10]:
        console.print(f"[yellow]skipped:[/] {error}")


@app.command()
def replay(
    data_dir: Optional[Path] = DataDir,
    policy: str = typer.Option("current", help="Policy to evaluate: current (the serving VW model), a model directory, uniform, or fixed:<plan>."),
    log: Optional[Path] = typer.Option(None, help="Event log to replay (default: <data-dir>/events/events.jsonl)."),
    out: Optional[Path] = typer.Option(None, help="Write the estimates as JSON here."),
) -> None:
    """Estimate a policy's average reward on logged traffic (IPS and self-normalized IPS, 95% intervals)."""
    from services.evaluation.replay import replay_policy

    try:
        result = replay_policy(_settings(data_dir), policy, log)
    except LtrrError as error:
        _fail(error)
    table = Table(title=f"replay of {result.policy} on {result.rounds:,} logged impressions")
    for column in ("estimator", "reward", "95% interval", "stderr"):
        table.add_column(column)
    table.add_row("logged (on-policy)", f"{result.logged_reward:.4f}", "", f"{result.logged_stderr:.4f}")
    for estimate in result.estimates:
        table.add_row(estimate.name, f"{estimate.value:.4f}", f"[{estimate.low:.4f}, {estimate.high:.4f}]", f"{estimate.stderr:.4f}")
    Console().print(table)
    console.print(f"effective sample size {result.effective_sample_size:,.0f}; {result.skipped} rounds skipped ({result.skip_reason})")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_json(), indent=2))


@app.command()
def simulate(
    queries: int = typer.Option(5000, help="Queries per run."),
    seed: int = typer.Option(1, help="Seed of the query stream, the users and the policies."),
    out: Optional[Path] = typer.Option(None, help="Write the windows and baselines as JSON here."),
    data_dir: Optional[Path] = DataDir,
    ingest_every: int = typer.Option(100, help="Run ingestion every this many requests."),
    baselines: bool = typer.Option(True, help="Also run uniform-random and fixed-plan policies over the same stream."),
    demo_size: Optional[int] = typer.Option(None, help="Entities in the demo catalog (default 20,000)."),
    workers: int = typer.Option(2, help="Runs in parallel processes (each loads its own encoder)."),
) -> None:
    """Closed loop on the demo catalog: simulated users search, click, play; the stack learns."""
    logging.basicConfig(level=logging.WARNING)
    from services.evaluation.simulate import run_simulation

    try:
        settings = _settings(data_dir, demo_size=demo_size)
        result = run_simulation(
            settings, queries=queries, seed=seed, ingest_every=ingest_every, baselines=baselines, progress=rich_progress, workers=workers
        )
    except LtrrError as error:
        _fail(error)
    table = Table(title=f"simulate: {queries:,} queries, seed {seed}")
    table.add_column("window")
    table.add_column("mean reward")
    table.add_column("stderr")
    for window in result["windows"]:
        table.add_row(f"{window['start']}-{window['end']}", f"{window['reward']:.4f}", f"{window['stderr']:.4f}")
    if "uniform_random_reward" in result:
        table.add_row("uniform random (whole run)", f"{result['uniform_random_reward']:.4f}", "")
    for name, value in result.get("fixed_plan_rewards", {}).items():
        table.add_row(f"fixed {name}", f"{value:.4f}", "")
    Console().print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        console.print(f"wrote {out}")


bench_app = typer.Typer(help="Measure retrieval quality and latency from outside.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("retrieval")
def bench_retrieval(
    dataset: Path = typer.Option(..., help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)."),
    out: Path = typer.Option(..., help="Write the report as JSON here."),
    split: str = typer.Option("test", help="Qrels split to evaluate."),
    k: int = typer.Option(100, help="Results per strategy."),
    cache_dir: Path = typer.Option(Path("results/cache"), help="Cache of document embeddings."),
) -> None:
    """Lexical, dense and RRF retrieval on a BEIR collection: nDCG@10, Recall@100, MRR@10, latency."""
    from services.evaluation.bench import run_bench_retrieval

    run_bench_retrieval(dataset, out, split=split, k=k, cache_dir=cache_dir, progress=rich_progress, fail=_fail)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
