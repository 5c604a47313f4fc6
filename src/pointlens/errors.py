"""Exception types of pointlens: one per kind of failure.

Every message names the argument (or file), what was received and what is accepted, so the CLI can print it as
one line and exit with status 2.
"""

from __future__ import annotations


class PointlensError(Exception):
    """Base class of every error pointlens raises on purpose."""


class InvalidArgumentError(PointlensError, ValueError):
    """An argument has the wrong type, shape, value or range."""


class DataError(PointlensError):
    """A data file or folder is missing, truncated or malformed."""


class CheckpointError(PointlensError):
    """A checkpoint is missing, not a plain checkpoint, or does not fit the model or data."""


def bad_argument(name: str, received, accepted: str) -> InvalidArgumentError:
    """Build the standard message: ``<name>: got <received>; expected <accepted>``."""
    text = repr(received) if not isinstance(received, str) else received
    if len(text) > 200:
        text = text[:197] + "..."
    return InvalidArgumentError(f"{name}: got {text}; expected {accepted}")
