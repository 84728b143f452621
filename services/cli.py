"""The ``ltrr`` command: config, index, serve, ingest, replay, simulate, bench.

Every input or configuration problem ends as one line on stderr that names the option or the ``LTRR_``
variable and the fix, with exit code 2; never a traceback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn, Optional

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

from catalog.schema import CatalogError
from contracts import BackendUnavailable, ConfigError, LtrrError
from services.numerics import pin_instruction_set
from services.settings import Settings, describe_settings, load_settings

app = typer.Typer(
    help="ltrr: learning to rank and retrieve. A bandit picks retrievers and quotas, LambdaMART ranks the union, "
    "clicks teach both. Every setting is an LTRR_* environment variable: `ltrr config` lists them.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
console = Console(stderr=True)
logger = logging.getLogger("ltrr")

DataDir = typer.Option(None, "--data-dir", help="Data directory (default: LTRR_DATA_DIR or ./data).")
Verbose = typer.Option(False, "--verbose", "-v", help="Log what each stage does (INFO level) to stderr.")
PROGRESS_LOG_EVERY_S = 10.0


def _settings(data_dir: Optional[Path], **overrides: object) -> Settings:
    """Settings of this command; they pin the numeric instruction set before torch or FAISS loads."""
    values = {key: value for key, value in overrides.items() if value is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    settings = load_settings(**values)
    pin_instruction_set(settings.numeric_isa)
    if settings.log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonLogFormatter())
    return settings


def _fail(error: Exception) -> NoReturn:
    console.print(f"[bold red]error:[/] {error}", soft_wrap=True, highlight=False)
    raise typer.Exit(code=2)


@contextlib.contextmanager
def _errors_as_one_line() -> Iterator[None]:
    """Configuration and input problems (ours, a malformed catalog, a path that cannot be used) as one line."""
    try:
        yield
    except (LtrrError, CatalogError) as error:
        _fail(error)
    except OSError as error:
        _fail(ConfigError(f"cannot use {error.filename or 'a path'}: {error.strerror or error}; check --data-dir / LTRR_DATA_DIR and the paths you passed"))


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line. Nothing here adds query text or user ids: at INFO the code logs neither."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage(), "pid": record.process,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)

    converter = time.gmtime  # type: ignore[assignment]  # typeshed types gmtime without its optional argument


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def progress_factory(settings: Settings | None = None) -> Callable[[str, int], Any]:
    """A bar on a terminal; elsewhere (a log file, CI) or with LTRR_NO_PROGRESS, a line every 10 s."""
    bar = sys.stderr.isatty() and not (settings.no_progress if settings is not None else False)

    @contextlib.contextmanager
    def progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
        if bar:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
            with Progress(*columns, console=console) as shown:
                task = shown.add_task(label, total=total)
                yield lambda done: shown.update(task, completed=done)
            return
        started = time.monotonic()
        last = [started]

        def report(done: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_LOG_EVERY_S:
                last[0] = now
                console.print(f"{label}: {done:,}/{total:,} ({100 * done / max(total, 1):.0f}%) after {now - started:.0f} s", highlight=False)

        console.print(f"{label}: started ({total:,})", highlight=False)
        yield report
        console.print(f"{label}: done in {time.monotonic() - started:.1f} s", highlight=False)

    return progress


@app.command()
def config(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object keyed by the LTRR_ names on stdout."),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """Print every setting: its LTRR_ variable, value and source (secrets show only as set or unset)."""
    _setup_logging(False)
    with _errors_as_one_line():
        overrides = {"data_dir": data_dir} if data_dir is not None else {}
        settings = load_settings(**overrides)
    rows = describe_settings(settings, overrides=overrides)
    if as_json:
        sys.stdout.write(json.dumps({row["name"]: {k: row[k] for k in ("value", "source", "description")} for row in rows}, indent=2) + "\n")
        return
    table = Table(title="ltrr settings", show_lines=False)
    for column in ("variable", "value", "source"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], json.dumps(row["value"]) if not isinstance(row["value"], str) else row["value"], row["source"])
    Console().print(table)


@app.command()
def index(
    data_dir: Optional[Path] = DataDir,
    catalog: Optional[Path] = typer.Option(None, help="JSONL catalog to index (default: generate the demo catalog)."),
    demo_size: Optional[int] = typer.Option(None, help="Entities in the generated demo catalog (default 20,000)."),
    dense_index: Optional[str] = typer.Option(None, help="FAISS index kind: flat (exact) or hnsw."),
    verbose: bool = Verbose,
) -> None:
    """Generate (or load) the catalog and build the lexical (tantivy) and dense (FAISS) indexes."""
    _setup_logging(verbose)
    from services.search.indexing import build_indexes

    with _errors_as_one_line():
        settings = _settings(data_dir, catalog_path=catalog, demo_size=demo_size, dense_index=dense_index)
        started = time.perf_counter()
        report = build_indexes(settings, progress_factory(settings))
    console.print(f"indexed {report.entities:,} entities in {time.perf_counter() - started:.1f} s under {settings.data_dir}")


def _check_port_is_free(host: str, port: int) -> None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As uvicorn binds: connections of a crashed predecessor in TIME_WAIT must not block a restart.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ConfigError(f"--port / LTRR_PORT: cannot listen on {host}:{port} ({error.strerror}); pick a free port or stop what holds it") from None


@app.command()
def serve(
    data_dir: Optional[Path] = DataDir,
    host: Optional[str] = typer.Option(None, help="Bind address (default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port, 1-65535 (default 8000)."),
    build_if_missing: bool = typer.Option(False, "--build-if-missing", help="Run `ltrr index` first when the catalog or an index is missing."),
    with_ingest: bool = typer.Option(
        False, "--with-ingest", help="Also run `ltrr ingest --follow 2` as a child process (with Redis), so feedback teaches the stack; `make demo` does."
    ),
    workers: Optional[int] = typer.Option(
        None, "--workers", help="Worker processes on this port (default 1; more need Redis). Any worker takes entity writes; the others follow."
    ),
    worker_process: bool = typer.Option(False, "--worker-process", hidden=True),
    verbose: bool = Verbose,
) -> None:
    """Start the search service (POST /search, POST /feedback, GET /healthz, GET /metrics, the page at /)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from services.app import build_app
    from services.search.indexing import build_indexes, indexes_exist
    from services.search.stack import open_stack
    from services.workers import listening_socket, supervise

    with _errors_as_one_line():
        settings = _settings(data_dir, host=host, port=port, workers=workers)
        check_write_guard(settings)
        if not worker_process:
            _check_port_is_free(settings.host, settings.port)
            if build_if_missing and not indexes_exist(settings):
                console.print(f"building the demo catalog and indexes under {settings.data_dir} (first run only)")
                build_indexes(settings, progress_factory(settings))
        if settings.workers > 1 and not worker_process:

            def worker_command(index: int) -> list[str]:
                command = [sys.executable, "-m", "services.cli", "serve", "--worker-process", "--data-dir", str(settings.data_dir),
                           "--host", settings.host, "--port", str(settings.port)]
                return [*command, "--verbose"] if verbose else command

            console.print(f"ltrr starting {settings.workers} workers at http://{settings.host}:{settings.port}  (each answers once loaded)")
            raise typer.Exit(supervise(settings, worker_command, with_ingest, _die_with_parent))
        stack = open_stack(settings)
        if with_ingest:
            start_ingest_child(stack)
        application = build_app(settings, opened=stack)
        # A worker listens only once it can answer: connections the kernel hands it earlier would wait.
        sockets = [listening_socket(settings.host, settings.port)] if worker_process else None
    # Keep-alive longer than clients and balancers keep idle connections (often 60 s): a server that closes
    # first races a request on the same connection, which the client sees as a reset.
    server = uvicorn.Server(uvicorn.Config(application, host=settings.host, port=settings.port, log_level="info" if verbose else "warning",
                                           timeout_keep_alive=75,
                                           # JSON logs: uvicorn's loggers propagate to ours instead of their own text handlers.
                                           log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG))

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started and not worker_process:
            console.print(f"ltrr serving at http://{settings.host}:{settings.port}  (API docs at /docs)")

    threading.Thread(target=announce, name="announce", daemon=True).start()
    # uvicorn drains requests on SIGTERM / SIGINT, then re-raises the signal with the handler it found
    # installed; these no-op handlers make that drained stop exit 0, as a clean stop should.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        server.run(sockets=sockets)
    except SystemExit:  # uvicorn exits 3 when it cannot bind or start; say it in our one line instead
        pass
    if not server.started:
        _fail(ConfigError(f"--port / LTRR_PORT: could not serve on {settings.host}:{settings.port} (see the log above)"))


def start_ingest_child(stack: Any) -> None:
    """`ltrr ingest --follow 2` beside the service, stopped before the service closes its Redis."""
    import subprocess

    if stack.pipeline.memory.backend != "redis":
        console.print("no Redis: this service learns in-process (--with-ingest is not needed)")
        return
    command = [sys.executable, "-m", "services.cli", "ingest", "--follow", "2", "--data-dir", str(stack.settings.data_dir)]
    child = subprocess.Popen(command, preexec_fn=_die_with_parent)
    logger.info("started `ltrr ingest --follow 2` (pid %d)", child.pid)

    def stop() -> None:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()

    stack.on_close.append(stop)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies, even by SIGKILL (Linux), so no ingest outlives
    its service holding the lease."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def check_write_guard(settings: Settings) -> None:
    """Entity writes open to a network are a decision, not a default."""
    if settings.api_key is None and not settings.allow_open_writes and not is_loopback(settings.host):
        raise ConfigError(
            f"--host / LTRR_HOST: {settings.host} is reachable from other machines and LTRR_API_KEY is unset, so anyone "
            "could add or delete entities; set LTRR_API_KEY (writes then need X-API-Key), or LTRR_ALLOW_OPEN_WRITES=true "
            "to leave them open on purpose, or bind 127.0.0.1"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def ingest(
    data_dir: Optional[Path] = DataDir,
    flush: bool = typer.Option(
        False, "--flush",
        help="Read every event up to the stream's end as of now, close every attribution window, commit, wait for any retrain started, exit.",
    ),
    follow: float = typer.Option(0.0, min=0.0, help="Keep running, ingesting every this many seconds (0: once)."),
    verbose: bool = Verbose,
) -> None:
    """Read the event stream; update the memory index, the bandit and the ranker (one ingester per Redis)."""
    _setup_logging(verbose)
    import redis

    from services.ingest.lease import LeaseLost

    stop = threading.Event()
    # SIGTERM ends the loop between passes, so a pass is never cut off halfway; the lease is released.
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

    def waiting(holder: str, seconds: float) -> None:
        console.print(f"the ingest lease is held by {holder}; waiting up to {seconds:.0f} s for it to lapse")

    with _errors_as_one_line():
        settings = _settings(data_dir)
        job = _open_ingest(settings, waiting, stop if follow > 0 else None)
        if job is None:
            return  # SIGTERM while waiting for Redis
        backoff = 1.0
        try:
            while not stop.is_set():
                try:
                    report = job.run(flush=flush)
                except (BackendUnavailable, redis.RedisError) as error:
                    if follow <= 0:
                        raise ConfigError(f"Redis stopped answering during ingest ({error.__class__.__name__}: {error}); "
                                          "nothing unacknowledged is lost: run `ltrr ingest` again once Redis is back") from None
                    # --follow outlives an outage: the unacknowledged entries wait in the stream.
                    console.print(f"ingest: Redis unreachable ({error.__class__.__name__}); retrying in {backoff:.0f} s", highlight=False)
                    stop.wait(backoff)
                    backoff = min(backoff * 2.0, 30.0)
                    continue
                except LeaseLost as error:
                    if follow <= 0:
                        raise
                    # The lease lapsed (an outage, a pause): start again from what is committed, as a restart would.
                    console.print(f"ingest: {error}; taking the lease again", highlight=False)
                    job.close()
                    job = _open_ingest(settings, waiting, stop)
                    if job is None:
                        return  # SIGTERM while waiting for Redis: the old job is closed, there is no new one
                    continue
                backoff = 1.0
                if follow <= 0:
                    _print_ingest(report)
                    break
                if report.lines or report.finalized:
                    # One line a pass: readable in a log, where a table a second would not be.
                    console.print(
                        f"ingest: {report.lines:,} events read, {report.finalized:,} impressions finalized "
                        f"(mean reward {report.mean_reward:.3f}), {report.training_rows:,} ranker rows, "
                        f"policy {report.policy}, ranker {report.ranker}, lag {job.lag_s():.1f} s",
                        highlight=False, soft_wrap=True,
                    )
                stop.wait(follow)
        except KeyboardInterrupt:
            pass
        finally:
            if job is not None:
                job.close()


def _open_ingest(settings: Settings, waiting: Callable[[str, float], None], stop: threading.Event | None) -> Any:
    """The ingest job. With ``stop`` (``--follow``), an unreachable Redis is waited out with backoff (up to
    30 s between tries) instead of ending the job; ``None`` if ``stop`` was set meanwhile. Without it, or for
    a configuration error (a refused password, a server that is not Redis), the error is raised."""
    import redis

    from services.ingest.jobs import open_ingest_job
    from services.registry import RedisUnreachable

    backoff = 1.0
    while True:
        try:
            return open_ingest_job(settings, on_wait=waiting)
        except (RedisUnreachable, BackendUnavailable, redis.ConnectionError, redis.TimeoutError) as error:
            if stop is None:
                raise
            reason = error.__class__.__name__ if isinstance(error, redis.RedisError) else str(error)
            console.print(f"ingest: Redis unreachable ({reason}); retrying in {backoff:.0f} s", highlight=False, soft_wrap=True)
        if stop.wait(backoff):
            return None
        backoff = min(backoff * 2.0, 30.0)


@app.command()
def stats(
    data_dir: Optional[Path] = DataDir,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (only JSON on stdout)."),
) -> None:
    """What the learning loop has applied: impressions, feedback, memory index, bandit, ranker rows, stream, storage."""
    _setup_logging(False)
    from services.ingest.stats import collect_stats

    with _errors_as_one_line():
        figures = collect_stats(_settings(data_dir))
    if as_json:
        sys.stdout.write(json.dumps(figures) + "\n")
        return
    table = Table(title="ltrr stats", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    for name, value in _flatten(figures):
        table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)


def _flatten(figures: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for name, value in figures.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{name}.")
        else:
            rows.append((f"{prefix}{name}", value))
    return rows


def _print_ingest(report: Any) -> None:
    """A two-column table, so it fits an 80-column terminal whatever the values."""
    table = Table(title="ingest", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    for name, value in (
        ("lines read", f"{report.lines:,}"), ("malformed lines", f"{report.malformed:,}"), ("duplicates", f"{report.duplicates:,}"),
        ("impressions", f"{report.impressions:,}"), ("feedback", f"{report.feedback:,}"), ("finalized", f"{report.finalized:,}"),
        ("mean reward", f"{report.mean_reward:.3f}"), ("ranker rows", f"{report.training_rows:,}"), ("ranker", report.ranker),
        ("policy", report.policy),
    ):
        table.add_row(name, value)
    Console().print(table)
    for error in report.errors[:10]:
        console.print(f"[yellow]skipped:[/] {error}", highlight=False)


@app.command()
def replay(
    data_dir: Optional[Path] = DataDir,
    policy: str = typer.Option("current", help="Policy to evaluate: current (the serving VW model), a model directory, uniform, or fixed:<plan>."),
    log: Optional[Path] = typer.Option(None, help="One event file to replay (default: the archive under <data-dir>/events/archive/, then <data-dir>/events/events.jsonl)."),
    out: Optional[Path] = typer.Option(None, help="Write the estimates as JSON here."),
) -> None:
    """Estimate a policy's average reward on logged traffic (IPS and self-normalized IPS, 95% intervals)."""
    from services.evaluation.replay import replay_policy

    with _errors_as_one_line():
        result = replay_policy(_settings(data_dir), policy, log)
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
    queries: int = typer.Option(5000, min=1, help="Queries per run."),
    seed: int = typer.Option(1, help="Seed of the query stream, the users and the policies."),
    out: Optional[Path] = typer.Option(None, help="Write the windows and baselines as JSON here."),
    data_dir: Optional[Path] = DataDir,
    ingest_every: int = typer.Option(100, min=1, help="Run ingestion every this many requests."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Also run uniform-random and fixed-plan policies over the same stream."),
    demo_size: Optional[int] = typer.Option(None, help="Entities in the demo catalog (default 20,000)."),
    workers: int = typer.Option(2, min=1, help="Runs in parallel processes (each loads its own encoder)."),
    collection: Optional[Path] = typer.Option(
        None, help="A BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/): loop over it instead of the demo catalog."),
    split: str = typer.Option("test", help="--collection: the qrels split whose queries the users ask (tune on train/dev)."),
    click_model: str = typer.Option("pbm", help="--collection: the users' click model: pbm, cascade or dbn."),
    eta: float = typer.Option(1.0, help="--collection, pbm: position i is examined with probability (1/i)**eta."),
    noise: float = typer.Option(0.05, help="--collection: click probability of an examined unjudged document."),
    perseverance: float = typer.Option(0.9, help="--collection, dbn: probability of reading on after an unsatisfying result."),
    satisfaction: float = typer.Option(0.8, help="--collection, dbn: probability that a clicked top-grade document satisfies."),
    sample: int = typer.Option(300, min=1, help="--collection: judged queries sampled from the split."),
    zipf: float = typer.Option(1.0, min=0.0, help="--collection: Zipf exponent of the sampled queries' frequencies."),
    window: int = typer.Option(500, min=2, help="--collection: requests per reported window."),
    cache_dir: Path = typer.Option(Path("results/cache"), help="--collection: cache of document embeddings."),
    plot: Optional[Path] = typer.Option(None, help="--collection: draw nDCG@10 and reward per window of every run into this PNG."),
    url: Optional[list[str]] = typer.Option(
        None, help="--collection over HTTP: drive running services instead of in-process runs, NAME=URL (e.g. learned=http://127.0.0.1:8000), "
                   "repeatable, all at once with the same requests and users; each service must hold the collection's corpus (with "
                   "`ltrr ingest --follow` beside it to learn). The run named learned is the reference of the differences. "
                   "The in-process options (--workers, --ingest-every, --baselines, --cache-dir) do not apply; the reward uses "
                   "this shell's LTRR_ reward settings, so give it the services' own."),
    rate: float = typer.Option(5.0, help="--url: requests a second sent to each service (wall-clock pacing)."),
) -> None:
    """Closed loop: simulated users search, click, play; the stack learns. On the demo catalog by default,
    or on any BEIR-format collection (--collection) with a choice of click models."""
    logging.basicConfig(level=logging.WARNING)
    from services.evaluation.simulate import WINDOW, run_simulation

    if url and collection is None:
        console.print("error: --url: drives services over a judged collection; give --collection DIR too")
        raise typer.Exit(2)
    if rate != 5.0 and not url:
        console.print("error: --rate: paces requests to running services; it needs --url NAME=URL (in process, runs go as fast as they can)")
        raise typer.Exit(2)
    if collection is not None:
        _simulate_collection(collection, split, queries, seed, out, data_dir, ingest_every, baselines, workers, click_model, eta,
                             noise, perseverance, satisfaction, sample, zipf, window, cache_dir, plot, url or [], rate)
        return
    with _errors_as_one_line():
        settings = _settings(data_dir, demo_size=demo_size)
        result = run_simulation(
            settings, queries=queries, seed=seed, ingest_every=ingest_every, baselines=baselines,
            progress=progress_factory(settings), workers=workers,
        )
    table = Table(title=f"simulate: {queries:,} queries, seed {seed}")
    table.add_column("window")
    table.add_column("mean reward")
    table.add_column("stderr")
    for slice_ in result["windows"]:
        table.add_row(f"{slice_['start']}-{slice_['end']}", f"{slice_['reward']:.4f}", f"{slice_['stderr']:.4f}")
    table.add_row("learned (whole run)", f"{result['learned_reward']:.4f}", "")
    if "uniform_random_reward" in result:
        table.add_row("uniform random (whole run)", f"{result['uniform_random_reward']:.4f}", "")
    for name, value in result.get("fixed_plan_rewards", {}).items():
        table.add_row(f"fixed {name}", f"{value:.4f}", "")
    Console().print(table)
    if not result["windows"]:
        console.print(f"no learning curve: windows are {WINDOW:,} queries; run at least {WINDOW:,} queries to see one")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        console.print(f"wrote {out}")


def _simulate_collection(collection: Path, split: str, requests: int, seed: int, out: Optional[Path], data_dir: Optional[Path],
                         ingest_every: int, baselines: bool, workers: int, click_model: str, eta: float, noise: float,
                         perseverance: float, satisfaction: float, sample: int, zipf: float, window: int, cache_dir: Path,
                         plot: Optional[Path], urls: list[str], rate: float) -> None:
    from services.evaluation.click_models import ClickModel
    from services.evaluation.collection_loop import plot_windows, run_collection_loop, run_collection_over_http

    with _errors_as_one_line():
        settings = _settings(data_dir)
        users = ClickModel(click_model, eta=eta, noise=noise, perseverance=perseverance, satisfaction=satisfaction)
        if urls:
            result = run_collection_over_http(
                settings, collection, urls, split=split, requests=requests, seed=seed, click_model=users, sample=sample, zipf=zipf,
                window=window, rate=rate, progress=progress_factory(settings),
            )
        else:
            result = run_collection_loop(
                settings, collection, split=split, requests=requests, seed=seed, ingest_every=ingest_every, click_model=users,
                sample=sample, zipf=zipf, baselines=baselines, window=window, cache_dir=cache_dir,
                progress=progress_factory(settings), workers=workers,
            )
    table = Table(title=f"{result['collection']} ({split}), {requests:,} requests, seed {seed}, {click_model} users: last {window} requests")
    for column in ("run", "reward", "nDCG@10", "clicks", "drawn", "nDCG@10 head", "learned - run, nDCG@10 (95%)"):
        table.add_column(column)
    for name, run in result["runs"].items():
        last = run["windows"][-1]
        head = run["last_window_head_ndcg@10"]
        diff = result["last_window_differences"].get(name, {}).get("ndcg@10")
        table.add_row(
            name, *(f"{last[m]['mean']:.3f} ± {last[m]['se']:.3f}" for m in ("reward", "ndcg@10", "clicks", "drawn")),
            f"{head['mean']:.3f}" if head else "-",
            f"{diff['mean']:+.3f} [{diff['low95']:+.3f}, {diff['high95']:+.3f}]" if diff else "-",
        )
    Console().print(table)
    for name, service in result.get("over_http", {}).get("services", {}).items():
        errors = ", ".join(f"{count} x {kind}" for kind, count in service["errors"].items()) or "none"
        console.print(f"{name}: {requests:,} requests in {service['seconds']:.0f} s, search p50 {service['latency_ms']['p50']:.0f} ms, "
                      f"p99 {service['latency_ms']['p99']:.0f} ms; {service['policy_versions']} bandit and {service['ranker_versions']} "
                      f"ranker versions answered; errors: {errors}", highlight=False)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        console.print(f"wrote {out}")
    if plot is not None:
        plot_windows(result, plot)
        console.print(f"wrote {plot}")


events_app = typer.Typer(help="Read the event log.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(events_app, name="events")


@events_app.command("export")
def events_export(
    out: Path = typer.Option(..., help="Write the events here, one JSON object a line."),
    data_dir: Optional[Path] = DataDir,
    log: Optional[Path] = typer.Option(None, help="One event file to read (default: every archived segment under <data-dir>/events/archive/, then <data-dir>/events/events.jsonl)."),
) -> None:
    """Export the logged events: complete lines only, one event per event_id; prints a JSON summary on stdout."""
    _setup_logging(False)
    from dataclasses import asdict

    from services.evaluation.export import export_events
    from services.eventlog import event_sources

    with _errors_as_one_line():
        report = export_events(event_sources(_settings(data_dir).data_dir, log), out)
    sys.stdout.write(json.dumps(asdict(report)) + "\n")


bench_app = typer.Typer(help="Measure retrieval quality and latency from outside.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(bench_app, name="bench")


@bench_app.command("retrieval")
def bench_retrieval(
    dataset: Path = typer.Option(..., help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)."),
    out: Path = typer.Option(..., help="Write the report as JSON here."),
    split: str = typer.Option("test", help="Qrels split to evaluate."),
    k: int = typer.Option(100, min=1, help="Results per strategy."),
    cache_dir: Path = typer.Option(Path("results/cache"), help="Cache of document embeddings."),
) -> None:
    """Lexical, dense and RRF retrieval on a BEIR collection: nDCG@10, Recall@100, MRR@10, latency."""
    from services.evaluation.bench import run_bench_retrieval

    with _errors_as_one_line():
        settings = _settings(None)
    run_bench_retrieval(dataset, out, split=split, k=k, cache_dir=cache_dir, progress=progress_factory(settings), fail=_fail)


@bench_app.command("unbiased-ranker")
def bench_unbiased_ranker(
    dataset: Path = typer.Option(..., help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)."),
    out: Path = typer.Option(..., help="Write the report as JSON here."),
    train_split: str = typer.Option("train", help="Qrels split whose queries the simulated users click on."),
    test_split: str = typer.Option("test", help="Qrels split the rankers are scored on."),
    seeds: str = typer.Option("1,2,3", help="Click-simulation and training seeds, comma-separated."),
    impressions: int = typer.Option(10, min=1, help="Pages shown per train query."),
    randomized: float = typer.Option(0.2, min=0.0, max=1.0, help="Share of pages with one adjacent pair in random order."),
    eta: float = typer.Option(1.0, min=0.0, help="Position-based users: position i is examined with probability (1/i)**eta."),
    noise: float = typer.Option(0.05, min=0.0, max=1.0, help="Click probability of an examined unjudged document."),
    cache_dir: Path = typer.Option(Path("results/cache"), help="Cache of document embeddings."),
) -> None:
    """Rankers trained from simulated clicks (no correction, inverse-propensity weighting, LightGBM's
    position-aware lambdarank) against one trained on the judgments and against fusion: nDCG@10 on the test split."""
    from services.evaluation.bench_unbiased import run_unbiased_benchmark
    from services.evaluation.click_models import ClickModel

    with _errors_as_one_line():
        settings = _settings(None)
        try:
            seed_list = tuple(int(seed) for seed in seeds.split(","))
        except ValueError:
            raise ConfigError.about("--seeds", f"expected comma-separated integers, got {seeds!r}") from None
        result = run_unbiased_benchmark(dataset, train_split, test_split, seed_list, impressions, randomized,
                                        ClickModel("pbm", eta=eta, noise=noise), cache_dir, progress_factory(settings))
    table = Table(title=f"{result['collection']}: rankers from {result['train_split']} clicks, nDCG@10 on {result['test_split']} "
                        f"({len(seed_list)} seeds)")
    for column in ("ranker", "nDCG@10", "± se (seeds)", "gain over fusion", "share of supervised gain"):
        table.add_column(column)
    for name, entry in result["rankers"].items():
        share = entry.get("share_of_supervised_gain")
        table.add_row(name, f"{entry['ndcg@10']:.4f}", f"{entry['se_over_seeds']:.4f}", f"{entry.get('gain_over_fusion', 0.0):+.4f}",
                      "-" if share is None else f"{share:.0%}")
    Console().print(table)
    for name, diff in result["paired_differences"].items():
        console.print(f"{name}: {diff['mean']:+.4f} nDCG@10 (95% interval {diff['low95']:+.4f} to {diff['high95']:+.4f}, per test query and seed)")
    console.print("examination, true:      " + " ".join(f"{v:.2f}" for v in result["examination"]["true"]))
    console.print("examination, estimated: " + " ".join(f"{v:.2f}" for v in result["examination"]["estimated_mean"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {out}")


models_app = typer.Typer(
    help="The saved bandit and ranker versions: list them with their verification, roll CURRENT back.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(
    kind: Optional[str] = typer.Option(None, "--kind", help="Only this kind: bandit or ranker (default: both)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list on stdout, one object per version."),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """List saved model versions, newest first: created time, which is CURRENT, and whether its files match the manifest's checksums (no model is loaded)."""
    _setup_logging(False)
    from contracts.artifacts import ModelStore
    from services.model_check import KINDS, check_kind, list_versions
    from services.registry import Paths

    with _errors_as_one_line():
        kinds = KINDS if kind is None else (check_kind(kind, "--kind"),)
        infos = list_versions(ModelStore(Paths(_settings(data_dir).data_dir).models), kinds)
    if as_json:
        sys.stdout.write(json.dumps([info.to_json() for info in infos]) + "\n")
        return
    table = Table("kind", "version", "created", "current", "verified")
    for info in infos:
        shown = info.to_json()
        table.add_row(info.kind, info.version, shown["created"] or "-", "CURRENT" if info.current else "", "ok" if info.ok else f"bad: {info.reason}")
    Console().print(table)


@models_app.command("rollback")
def models_rollback(
    kind: str = typer.Argument(..., help="bandit or ranker."),
    to: Optional[str] = typer.Option(None, "--to", help="The version to serve (default: the newest version older than CURRENT that verifies)."),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """Point KIND's CURRENT at an older version after loading it in a child process; running services swap it in on their next reload."""
    _setup_logging(False)
    from contracts.artifacts import ModelStore
    from services.model_check import rollback
    from services.registry import Paths

    with _errors_as_one_line():
        previous, target = rollback(ModelStore(Paths(_settings(data_dir).data_dir).models), kind, to)
    sys.stdout.write(f"{kind}: CURRENT {previous or '(none)'} -> {target}\n")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
