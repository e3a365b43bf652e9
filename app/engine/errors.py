"""Errors the engine raises. Each carries a message meant for the user."""


class EngineError(Exception):
    """Base class: the message says what is wrong, in words a user can act on."""


class InputError(EngineError):
    """The photo or mask cannot be processed as given."""


class ModelError(EngineError):
    """The model file or its sidecar is missing, unreadable or of an unknown contract."""


class BackendUnavailable(EngineError):
    """The requested backend cannot run on this machine."""


class BackendFailure(EngineError):
    """The backend failed while running a job (the job may be retried on another backend)."""


class Cancelled(EngineError):
    """The job was cancelled by the user."""
