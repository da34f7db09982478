"""Every exception myshift raises, in one place.

The state machine matches Lambda errors by class name: the names of the
`TransientError` subclasses appear in the ASL `Retry.ErrorEquals` lists, the
`TerminalError` ones are never retried. Messages are one line, name what is wrong,
and never hold a secret.
"""

from __future__ import annotations


class MyshiftError(Exception):
    """Base class of all myshift errors."""


class TerminalError(MyshiftError):
    """An error that a retry cannot fix (bad input, bad config, bad data)."""


class TransientError(MyshiftError):
    """An error that may pass (a dropped connection, a throttled API); retried."""


# --- terminal -----------------------------------------------------------------


class ConfigError(TerminalError):
    """A pipeline file or setting is invalid."""


class InputError(TerminalError):
    """Execution input or CLI arguments are invalid."""


class IdentifierError(TerminalError, ValueError):
    """A table or column name cannot be used safely (a ValueError, so pydantic reports it)."""


class SchemaError(TerminalError):
    """The source table cannot be synced as it is (no key, unsupported type...)."""


class SourceQueryError(TerminalError):
    """MySQL refused a query for a reason a retry does not fix."""


class LoadError(TerminalError):
    """The Redshift load failed (the database's error text is in the message)."""


class CountMismatchError(TerminalError):
    """Rows counted on one side differ from the other."""


class StateConflictError(TerminalError):
    """A state item changed under us (a concurrent writer)."""


class TableLockedError(TerminalError):
    """Another execution holds the table's lock."""


class RunFailedError(TerminalError):
    """At least one table of the run failed (each table's cause is in the message)."""


# --- transient ----------------------------------------------------------------


class SourceUnavailableError(TransientError):
    """MySQL could not be reached or dropped the connection."""


class StorageUnavailableError(TransientError):
    """S3 or DynamoDB throttled or failed a request."""


class WarehouseUnavailableError(TransientError):
    """The Redshift Data API throttled or failed a request."""


def transient_error_names() -> list[str]:
    """Names of every transient error class (what the state machine retries)."""
    found: list[str] = []
    pending = list(TransientError.__subclasses__())
    while pending:
        cls = pending.pop(0)
        found.append(cls.__name__)
        pending.extend(cls.__subclasses__())
    return sorted(found)
