"""Command lines in the README, the docs and the CLI's own examples, checked against the real parsers.

``commands(text)`` finds every ``lmr-trainer`` / ``lmr-worker`` / ``lmr-geocode`` / ``make`` / ``python -m``
line (in code blocks and inline code; continuation lines joined, comments, leading ``VAR=value``
assignments, optional parts in usage notation (``[--runtime auto]``) and anything after a shell operator
dropped). ``problem(cmd)`` parses it the way the
program would, stopping before any work: click's ``make_context`` for the click commands (unknown
options, wrong option forms and missing arguments fail), the module's own ``argparse`` parser for the
``python -m bench...`` scripts, the Makefile's targets for ``make``. It returns None when the line
parses, else what is wrong.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = {"lmr-trainer": "trainer.cli", "lmr-worker": "worker.cli", "lmr-geocode": "geocode.cli"}
STARTS = ("lmr-trainer", "lmr-worker", "lmr-geocode", "make", "python", "python3")
OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "<<", "2>&1", "2>", "1>"}
SHELL = {"", "bash", "sh", "shell", "console"}  # fenced blocks read as commands; ```text holds diagrams
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def _code_lines(text: str) -> list[tuple[str, bool]]:
    """Lines of fenced and indented code blocks and inline code spans (True), continuation lines joined."""
    out: list[tuple[str, bool]] = []
    fence: str | None = None  # the open block's language
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else line.strip().strip("`").strip()
            continue
        if fence is not None:
            if fence in SHELL:
                out.append((line.strip(), False))
        elif line.startswith("    ") or line.startswith("\t"):
            out.append((line.strip(), False))
        else:
            out.extend((m.strip(), True) for m in re.findall(r"`([^`]+)`", line))
    joined: list[tuple[str, bool]] = []
    for line, inline in out:
        if joined and joined[-1][0].endswith("\\"):
            joined[-1] = (joined[-1][0][:-1].rstrip() + " " + line, joined[-1][1])
        else:
            joined.append((line, inline))
    return joined


def _tokens(line: str) -> list[str] | None:
    """The command's words, or None when the line is not one of the commands checked."""
    line = re.sub(r"(^|\s)#.*$", "", line).strip()  # a comment
    line = re.sub(r"\s\[-[^\]]*\]", "", line)  # usage notation: [--option VALUE] is optional
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    while words and ASSIGNMENT.match(words[0]):
        words = words[1:]
    for i, w in enumerate(words):
        if w in OPERATORS or w.startswith((">", "2>")):
            words = words[:i]
            break
    if len(words) < 2 or words[0] not in STARTS:  # a bare program name in prose is not a command line
        return None
    if words[0].startswith("python") and (len(words) < 3 or words[1] != "-m"):
        return None
    return words


@dataclass(frozen=True)
class Command:
    """A command line as words. ``inline``: quoted in prose (`lmr-worker run --runtime`), so it may name a
    command or option without its values; only unknown commands and options count there."""

    words: list[str]
    inline: bool = False


def commands(text: str) -> list[Command]:
    """Every checked command line in ``text``."""
    found = []
    for line, inline in _code_lines(text):
        words = _tokens(line)
        if words is not None:
            found.append(Command([w for w in words if w != "..."] if inline else words, inline))
    return found


class _Parsed(Exception):
    """Raised by the patched argparse once the arguments parsed: the script stops before any work."""


def _click(cmd: click.Command, prog: str, args: list[str], resilient: bool = False) -> str | None:
    try:
        with cmd.make_context(prog, list(args), resilient_parsing=resilient) as ctx:
            sub: click.Context = ctx
            while isinstance(sub.command, click.Group):
                rest = [*sub._protected_args, *sub.args]
                if not rest:
                    break
                name, next_cmd, rest = sub.command.resolve_command(sub, rest)
                if next_cmd is None or name is None:
                    return f"no command {rest[:1]}"
                sub = next_cmd.make_context(name, rest, parent=sub, resilient_parsing=resilient)
        return None
    except click.exceptions.Exit as exc:  # --help, --version
        return None if exc.exit_code == 0 else f"exit {exc.exit_code}"
    except click.ClickException as exc:
        return exc.format_message()


def _argparse(module: Any, args: list[str]) -> str | None:
    original = argparse.ArgumentParser.parse_args
    errors: list[str] = []

    def parse(self: argparse.ArgumentParser, a: Any = None, ns: Any = None) -> NoReturn:
        original(self, a, ns)
        raise _Parsed

    def error(self: argparse.ArgumentParser, message: str) -> NoReturn:
        errors.append(message)
        raise SystemExit(2)

    saved = sys.argv
    argparse.ArgumentParser.parse_args = parse  # type: ignore[assignment,method-assign]
    argparse.ArgumentParser.error = error  # type: ignore[method-assign]
    sys.argv = [module.__name__, *args]
    try:
        module.main()
    except _Parsed:
        return None
    except SystemExit as exc:
        return errors[0] if errors else (None if exc.code in (0, None) else f"exit {exc.code}")
    finally:
        sys.argv = saved
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
        del argparse.ArgumentParser.error
    return "its main() returned without parsing arguments"


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return {m for m in re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.M)}


def problem(command: Command) -> str | None:
    """None when the command line parses against the real program, else the parser's complaint."""
    words, resilient = command.words, command.inline
    head, args = words[0], words[1:]
    if head == "make":
        unknown = [t for t in args if "=" not in t and not t.startswith("-") and t not in make_targets()]
        return f"no make target {unknown}" if unknown else None
    if head.startswith("python"):
        name, args = args[1], args[2:]
        if name not in PROGRAMS.values() and not name.startswith(("lmr", "bench", "demo", "trainer", "worker")):
            return None if importlib.util.find_spec(name) else f"no module {name}"
        module = importlib.import_module(name)
        if hasattr(module, "__path__"):  # a package: python -m runs its __main__
            module = importlib.import_module(f"{name}.__main__")
        main = getattr(module, "main", None)
        if isinstance(main, click.Command):
            return _click(main, name, args, resilient)
        if main is None:
            return f"module {name} has no main()"
        if name == "lmr.datasets":  # no arguments; running it would look for (or fetch) IDRISI
            return f"lmr.datasets takes no arguments, got {args}" if args else None
        why = _argparse(module, args)
        if resilient and why and why.startswith("the following arguments are required"):
            return None
        return why
    main = importlib.import_module(PROGRAMS[head]).main
    return _click(main, head, args, resilient)
