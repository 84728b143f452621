"""The error hierarchy. Messages name the parameter, the bad value and the fix."""

from __future__ import annotations


class LtrrError(Exception):
    """Base of every error ltrr raises on purpose."""


class ConfigError(LtrrError):
    """A setting is missing, malformed or points at something that does not exist.

    Stages name their own constructor parameter (``ConfigError.about("epsilon", ...)``); the composition
    root, which knows which setting fed that parameter, re-raises with the setting's name.
    """

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message

    @classmethod
    def about(cls, parameter: str, problem: str) -> ConfigError:
        error = cls(f"{parameter}: {problem}", parameter)
        error.message = problem
        return error


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


class NotFound(BadRequest):
    """A request names an id (a request, an entity) that does not exist; HTTP 404."""
