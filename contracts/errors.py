"""The error hierarchy. Messages name the parameter, the bad value and the fix."""


class LtrrError(Exception):
    """Base of every error ltrr raises on purpose."""


class ConfigError(LtrrError):
    """A setting is missing, malformed or points at something that does not exist."""


class ArtifactError(LtrrError):
    """A saved model or index is missing, corrupt or was written by an incompatible version."""


class BackendUnavailable(LtrrError):
    """A backend (Redis, OpenSearch, ...) cannot be reached."""


class BadRequest(LtrrError):
    """A request field is invalid. `field` names it so the HTTP layer can report it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
