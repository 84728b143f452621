"""One random generator per process, for the draws that decide what users see.

``LTRR_SEED`` unset (the default): the generator is seeded from OS entropy, and the entropy is logged at
start so a run can still be replayed. Set (0 counts as set): each process derives its own stream from the
seed, its worker or replica id (``LTRR_WORKER_ID``) and its role, so a run is reproducible and replicas
never share a stream. Model reloads never touch the generator: it belongs to the process, not the policy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from services.settings import Settings

logger = logging.getLogger(__name__)

ROLES = {"serve": 0, "ingest": 1, "replay": 2}


@dataclass(frozen=True)
class ProcessRandomness:
    generator: np.random.Generator
    library_seed: int
    description: str


def process_randomness(settings: Settings, role: str) -> ProcessRandomness:
    """The process's generator, an integer seed derived from it for libraries that take one (VW's
    bootstrap, the explore strategy) and a sentence saying where it came from (logged once)."""
    if settings.seed is None:
        sequence = np.random.SeedSequence()
        description = f"random draws seeded from OS entropy (numpy SeedSequence entropy {sequence.entropy}); set LTRR_SEED for a reproducible run"
    else:
        sequence = np.random.SeedSequence([settings.seed, settings.worker_id, ROLES[role]])
        description = f"random draws seeded from LTRR_SEED={settings.seed}, worker {settings.worker_id}, role {role}"
    library_seed = int(sequence.spawn(1)[0].generate_state(1)[0] % (2**31 - 1))
    logger.info(description)
    return ProcessRandomness(np.random.default_rng(sequence), library_seed, description)
