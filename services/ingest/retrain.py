"""``python -m services.ingest.retrain``: one ranker retrain in its own process, started by ``ltrr ingest``
(niced, LightGBM on LTRR_RANKER_THREADS threads) so that ingestion never waits for it. Reads the newest
training rows from Redis, trains, gates against the published ranker and publishes the new one if the
gate admits it; prints one line saying what happened."""

from __future__ import annotations

import logging
import sys

from contracts import LtrrError
from contracts.artifacts import ModelStore
from ranker.base import Ranker
from services.eventstream import redis_client
from services.ingest.stream_ingest import ROWS_KEY
from services.ingest.training import retrain_ranker
from services.registry import Paths, make_ranker
from services.settings import load_settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s retrain: %(message)s")
    try:
        settings = load_settings()
        if not settings.redis_url:
            raise LtrrError("LTRR_REDIS_URL: the retrain worker reads its rows from Redis; ltrr ingest sets it")
        models = ModelStore(Paths(settings.data_dir).models)
        rows = [str(line) for line in reversed(redis_client(settings.redis_url, 30.0).lrange(ROWS_KEY, 0, -1))]
        serving: list[Ranker] = [make_ranker(settings, models)]
        outcome = retrain_ranker(settings, models, rows, lambda: serving[0], lambda ranker: serving.__setitem__(0, ranker))
    except LtrrError as error:
        print(f"retrain: error: {error}", file=sys.stderr)
        return 2
    logging.getLogger("retrain").info("ranker: %s", outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
