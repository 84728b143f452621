"""Value types and errors shared by every stage (the only module all stages may import)."""

from contracts.errors import (
    ArtifactError,
    BackendUnavailable,
    BadRequest,
    ConfigError,
    LtrrError,
    NotFound,
)
from contracts.types import (
    Candidate,
    Context,
    Decision,
    EntityFacts,
    Hit,
    Plan,
    Query,
    Scored,
    Slot,
    choose_index,
)

__all__ = [
    "ArtifactError",
    "BackendUnavailable",
    "BadRequest",
    "Candidate",
    "ConfigError",
    "Context",
    "Decision",
    "EntityFacts",
    "Hit",
    "LtrrError",
    "NotFound",
    "Plan",
    "Query",
    "Scored",
    "Slot",
    "choose_index",
]
