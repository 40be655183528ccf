"""One settings path: CLI flags over ``LMR_*`` environment variables over a config file.

Commands take ``--config FILE`` (YAML or TOML) whose keys equal the flags
(``batch-size`` or ``batch_size``). The file fills click's ``default_map``, so
click resolves each value as flag > environment variable > file > default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import click

from lmr import logs
from lmr.errors import ConfigError, LmrError

F = TypeVar("F", bound=Callable[..., Any])

SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey", "key")


def env_name(flag: str) -> str:
    """``--batch-size`` -> ``LMR_BATCH_SIZE``."""
    return "LMR_" + flag.lstrip("-").replace("-", "_").upper()


def option(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    """A click option that also reads ``LMR_<NAME>`` from the environment."""
    long = next((d for d in decls if d.startswith("--")), None)
    if long and "envvar" not in kwargs:
        kwargs["envvar"] = env_name(long.split("/")[0])
        kwargs.setdefault("show_envvar", True)
    return click.option(*decls, **kwargs)


def fail(exc: LmrError) -> None:
    """Turn an lmr error (problem + fix) into click's one-line error and exit status 1."""
    raise click.ClickException(str(exc)) from exc


def log_options(f: F) -> F:
    """``--log-level`` and ``--log-format``, shared by the command groups."""
    formats = click.Choice(["plain", "json"])
    f = option("--log-format", type=formats, default="plain", help="Plain or JSON log lines.")(f)
    return option("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR.")(f)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or TOML config file into a flat dict keyed by parameter name."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"Config file {p} does not exist.", "pass an existing .yaml/.yml/.toml file to --config.")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        elif p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"Config file {p} has an unknown extension.", "use .yaml, .yml or .toml.")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"Config file {p} is not valid: {exc}.", "fix the syntax error it names.") from exc
    except Exception as exc:  # yaml.YAMLError
        raise ConfigError(f"Config file {p} is not valid: {exc}.", "fix the syntax error it names.") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"Config file {p} must hold a mapping of flag names to values.", "write `key: value` lines.")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _apply_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    data = load_config_file(value)
    known = {p.name for p in ctx.command.params if p.name}
    unknown = sorted(set(data) - known)
    if unknown:
        raise click.BadParameter(
            f"unknown keys {', '.join(unknown)}; the keys must equal this command's flags "
            f"({', '.join(sorted(k for k in known if k != 'config'))})."
        )
    ctx.default_map = {**(ctx.default_map or {}), **data}
    return value


def config_option(f: F) -> F:
    """Add ``--config FILE`` (YAML/TOML) whose keys equal the command's flags."""
    return click.option(
        "--config",
        type=click.Path(dir_okay=False),
        is_eager=True,
        expose_value=True,
        callback=_apply_config,
        envvar="LMR_CONFIG",
        help="YAML or TOML file whose keys equal the flags (flags and LMR_* variables win).",
    )(f)


def is_secret(name: str) -> bool:
    """Whether a setting name looks like it holds a secret."""
    low = name.lower()
    return any(w in low for w in SECRET_WORDS) and not low.endswith(("_file", "_path", "_location"))


def redact(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``settings`` safe to log or save: secret values replaced by ``***``."""
    return {k: ("***" if is_secret(k) and v not in (None, "") else v) for k, v in settings.items()}


def secret_from_env(var: str) -> str | None:
    """Read a secret from the environment only (never from flags or files); it is masked in every log line."""
    value = os.environ.get(var)
    logs.mask(value)
    return value or None


def redact_url(url: str | None) -> str | None:
    """``url`` safe to log or save: a password in it (``https://user:PASSWORD@host``) becomes ``***``.

    The password is also masked in every log line from now on (geopy logs request URLs at DEBUG level).
    """
    if not url:
        return url
    parts = urlsplit(url if "://" in url else f"//{url}")
    if parts.password is None:
        return url
    logs.mask(parts.password)
    logs.mask(unquote(parts.password))
    user = parts.netloc.rpartition("@")[0].partition(":")[0]
    clean = urlunsplit(parts._replace(netloc=f"{user}:{logs.MASK}@{parts.netloc.rpartition('@')[2]}"))
    return clean if "://" in url else clean[2:]
