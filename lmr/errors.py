"""One exception hierarchy for lmr.

Every class also inherits the builtin it resembles (as geopy does), so callers
can catch ``ValueError`` or ``TimeoutError`` without knowing lmr. Messages name
the problem and, where there is one, the fix.
"""

from __future__ import annotations


class LmrError(Exception):
    """Base class of every error lmr raises on purpose."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} Fix: {fix}" if fix else problem)


class ConfigError(LmrError, ValueError):
    """A setting, flag, environment variable or config file is wrong."""


class DataError(LmrError, ValueError):
    """Input data cannot be read or does not have the expected shape."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset is in none of the places looked at, and was not (or could not be) downloaded."""


class DatasetDownloadError(DataError, ConnectionError):
    """A dataset file could not be downloaded, or its bytes fail their size or sha256."""


class ModelError(LmrError, RuntimeError):
    """A model cannot be built, loaded or run."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """No model exists at the given reference."""


class CorruptModelError(ModelError, ValueError):
    """A published model is partial or its files fail their checksums."""


class BrokerError(LmrError, ConnectionError):
    """The Kafka broker cannot be reached or refused an operation."""


class GeocoderError(LmrError):
    """Base class of geocoding failures."""


class GeocoderTimeout(GeocoderError, TimeoutError):
    """The geocoding service did not answer in time."""


class GeocoderUnavailable(GeocoderError, ConnectionError):
    """The geocoding service is down, refused the connection, or its circuit is open."""


class GeocoderRateLimited(GeocoderError, ConnectionError):
    """The geocoding service answered 429 (too many requests); ``retry_after`` is its wait in seconds, if it said."""

    def __init__(self, problem: str, fix: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(problem, fix)
        self.retry_after = retry_after


class GeocoderQueryError(GeocoderError, ValueError):
    """The geocoding service rejected the query or its credentials."""
