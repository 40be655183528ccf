"""Logging set-up shared by the CLIs: plain or JSON lines on stderr, secrets masked.

Every secret read from the environment (:func:`lmr.config.secret_from_env`) or
found in a URL (``https://user:PASSWORD@host``) is registered with :func:`mask`,
and the handler :func:`setup` installs replaces it by ``***`` in every line it
writes, whatever the logger (kafka-python's admin client logs its whole
configuration at DEBUG level), the level or the format, in the message, its
arguments and tracebacks alike, also where the secret appears escaped (``repr``,
JSON or URL-encoded).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from urllib.parse import quote

MASK = "***"
_secrets: set[str] = set()
_forms: tuple[str, ...] = ()
_lock = threading.Lock()


def mask(secret: str | None) -> None:
    """Never write ``secret`` in a log line (from now on, any logger, any level)."""
    global _forms
    if not secret:
        return
    with _lock:
        if secret in _secrets:
            return
        _secrets.add(secret)
        forms = set(_forms)
        for s in _secrets:
            r = repr(s)[1:-1]
            forms.update({s, r, json.dumps(s)[1:-1], json.dumps(r)[1:-1], quote(s, safe="")})
        _forms = tuple(sorted((f for f in forms if f), key=len, reverse=True))


def redact_text(text: str) -> str:
    """``text`` with every masked secret replaced by ``***``."""
    for form in _forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        obj = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            obj.update(extra)
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, default=str)


class Masking(logging.Formatter):
    """Wraps a formatter: the finished line, traceback included, goes through :func:`redact_text`."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(self.inner.format(record))


def setup(level: str = "INFO", fmt: str = "plain") -> None:
    """Configure the root logger once."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        inner: logging.Formatter = JsonFormatter()
    else:
        inner = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    handler.setFormatter(Masking(inner))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
