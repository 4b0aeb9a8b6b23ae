"""One error family for the whole project.

Library code raises these; only the CLI turns them into exit codes. ``exit_code`` follows the CLI
convention: 1 = a check failed or a request was refused, 2 = usage or configuration error.
"""


class TailorError(Exception):
    """Base of every error a user can act on."""

    exit_code = 1


class ConfigError(TailorError):
    """A setting is missing or invalid; the message names the key."""

    exit_code = 2


class RefusedError(TailorError):
    """A request was understood but refused by a rule (policy, role, four-eyes, bad input)."""


class NotFoundError(TailorError):
    """A named object (version, alias, file, key) does not exist."""


class IntegrityError(TailorError):
    """Stored content does not match its recorded hash, or the audit chain is broken."""


class StoreError(TailorError):
    """The object store could not be reached or answered in an unexpected way."""


class AccessDeniedError(RefusedError):
    """The store's identities refused the request for the configured role."""


class AlreadyExistsError(RefusedError):
    """A create-only write lost: the key exists already."""


def first_line(err: BaseException) -> str:
    """The first line of a library's error message (transformers, safetensors and pyarrow write
    several), or the error's type where it says nothing: a one-line message to build on."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
