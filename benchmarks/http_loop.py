"""The collection loop over HTTP, against the deployment users run: for each run a redis-server, `ltrr serve`
holding the collection's corpus and (when the run learns) `ltrr ingest --follow 1`, all at once on this
machine; then `ltrr simulate --collection DIR --url NAME=URL ...` drives them with the same requests and
users at ``--rate`` requests a second each.

    python benchmarks/http_loop.py --collection ../shared/datasets/scifact --split test --requests 4000 \\
        --out results/http_loop.json --plot results/http_loop.png

Runs (``--runs``): ``learned`` (the bandit, LTRR_POLICY=vw), ``uniform``, ``all=100`` (every strategy at
100) and ``static`` (lexical and dense at 100, no ingest: no memory updates, no ranker, no
bandit; reciprocal-rank fusion). The collection is indexed once (document embeddings cached in
``--cache-dir``) and copied into each run's data directory. Every figure is the client's: what the users
of each deployment got. The deployments and the driver run the default settings plus the ones this script
sets (``LTRR_`` variables of the calling shell are ignored), so both sides agree on the plans and the
reward.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
for _name in [name for name in os.environ if name.startswith("LTRR_")]:
    del os.environ[_name]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deployment import LTRR, deployment  # noqa: E402

from contracts import Plan  # noqa: E402
from services.cli import progress_factory  # noqa: E402
from services.evaluation.collection_loop import prepare_collection  # noqa: E402
from services.settings import Settings  # noqa: E402

RUNS = ("learned", "uniform", "all=100", "static")


def run_settings(name: str, settings: Settings) -> tuple[dict[str, str], bool]:
    """The ``LTRR_`` settings of one run and whether it ingests (learns)."""
    strategies = sorted(settings.strategies)
    top = 100
    if name == "learned":
        return {"LTRR_POLICY": "vw"}, True
    if name == "uniform":
        return {"LTRR_POLICY": "uniform"}, True
    if name == "all=100":
        return {"LTRR_POLICY": "fixed:" + Plan.of({s: top for s in strategies}).name}, True
    if name == "static":
        plan = Plan.of({s: top if s in ("lexical", "dense") else 0 for s in strategies})
        return {"LTRR_POLICY": "fixed:" + plan.name}, False
    raise SystemExit(f"error: --runs: unknown run {name!r}; choose from {', '.join(RUNS)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", type=Path, required=True, help="A BEIR-format folder.")
    parser.add_argument("--split", default="test")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=5.0, help="Requests a second to each deployment.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--click-model", default="pbm")
    parser.add_argument("--window", type=int, default=500, help="Requests per reported window.")
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=RUNS)
    parser.add_argument("--attribution-window-s", type=float, default=20.0,
                        help="LTRR_ATTRIBUTION_WINDOW_S of every deployment (the simulated users act within a second or two).")
    parser.add_argument("--lateness-s", type=float, default=5.0, help="LTRR_INGEST_LATENESS_S of every deployment.")
    parser.add_argument("--data-dir", type=Path, default=Path("results/http_loop_data"))
    parser.add_argument("--cache-dir", type=Path, default=Path("results/cache"))
    parser.add_argument("--out", type=Path, default=Path("results/http_loop.json"))
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()

    settings = Settings(data_dir=args.data_dir, no_progress=True)
    prepared = prepare_collection(settings, args.collection, args.cache_dir, progress_factory(settings))
    common = {
        "LTRR_ATTRIBUTION_WINDOW_S": str(args.attribution_window_s),
        "LTRR_INGEST_LATENESS_S": str(args.lateness_s),
        "LTRR_SEED": str(args.seed),
    }
    with ExitStack() as stack:
        urls = []
        for name in args.runs:
            run_dir = args.data_dir / "runs" / f"{args.collection.name}-{args.split}-s{args.seed}" / name
            if run_dir.exists():
                shutil.rmtree(run_dir)
            shutil.copytree(prepared.data_dir / "indexes", run_dir / "indexes")
            shutil.copy2(prepared.data_dir / "catalog.jsonl", run_dir / "catalog.jsonl")
            values, learns = run_settings(name, settings)
            environment = {**common, **values, "LTRR_CATALOG_PATH": str(run_dir / "catalog.jsonl")}
            running = stack.enter_context(deployment(run_dir, environment, f"ltrr-http-loop-{name}-", 300.0, ingest=learns))
            print(f"{name}: {running.base} (logs in {running.logs})", flush=True)
            urls += ["--url", f"{name}={running.base}"]
        command = [LTRR, "simulate", "--collection", str(args.collection), "--split", args.split, "--queries", str(args.requests),
                   "--seed", str(args.seed), "--click-model", args.click_model, "--window", str(args.window), "--rate", str(args.rate), "--out", str(args.out), *urls]
        if args.plot is not None:
            command += ["--plot", str(args.plot)]
        print(" ".join(command), flush=True)
        completed = subprocess.run(command, env={**os.environ, "LTRR_DATA_DIR": str(args.data_dir)})
    sys.exit(completed.returncode)


if __name__ == "__main__":
    main()
