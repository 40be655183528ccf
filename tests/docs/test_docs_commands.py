"""Every command line in the README, the docs and the CLI's own --help examples parses against the real CLI."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import yaml

from tests.docs_commands import REPO, Command, commands, problem

SOURCES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "docker" / "README.md"]


def _help_examples() -> list[tuple[str, Command]]:
    from geocode.cli import main as geocode
    from trainer.cli import main as trainer
    from worker.cli import main as worker

    found = []
    for group in (trainer, worker, geocode):
        for name, cmd in [("", group), *group.commands.items()]:
            for words in commands("\n".join("    " + line for line in (cmd.help or "").splitlines())):
                found.append((f"--help of {group.name} {name}".strip(), words))
    return found


def _documented() -> list[tuple[str, Command]]:
    return [(str(p.relative_to(REPO)), w) for p in SOURCES for w in commands(p.read_text(encoding="utf-8"))]


def _without_config(c: Command) -> Command:
    """``--config FILE`` reads the file when parsed; the example file is checked on its own below."""
    out: list[str] = []
    skip = False
    for w in c.words:
        if skip:
            skip = False
            continue
        if w == "--config":
            skip = True
            continue
        out.append(w)
    return Command(out, c.inline)


def test_the_extractor_finds_commands_and_drops_shell_around_them() -> None:
    text = "\n".join(
        [
            "```bash",
            "LMR_X=1 lmr-worker run --model m \\",
            "    --source file:a.jsonl   # a comment",
            "lmr-worker broker --port 9092 [--topic NAME] &",
            "echo not this",
            "```",
            "Inline: `python -m bench.quality --model m | tee q.txt` and `make demo`.",
        ]
    )
    assert commands(text) == [
        Command(["lmr-worker", "run", "--model", "m", "--source", "file:a.jsonl"]),
        Command(["lmr-worker", "broker", "--port", "9092"]),
        Command(["python", "-m", "bench.quality", "--model", "m"], inline=True),
        Command(["make", "demo"], inline=True),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "lmr-trainer run --train idrisi:lmr/train --heldout-events ecuador_earthquake_2016 hurricane_harvey_2017",
        "lmr-worker run --modle registry/x",
        "lmr-worker evaluate",
        "lmr-geocode resolve",
        "python -m bench.inference_speed --batch-size 32",
        "python -m bench.quality --model m --no-such-flag",
        "make deploy",
    ],
)
def test_wrong_commands_are_caught(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    (command,) = commands(f"```bash\n{line}\n```")
    assert problem(command) is not None


def test_every_documented_command_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # paths such as bench/geocode_events.json are checked for existence
    found = _documented()
    assert len(found) > 60, "the extractor lost the docs' commands"
    bad = [f"{where}: {' '.join(c.words)}\n    -> {why}" for where, c in found if (why := problem(_without_config(c)))]
    assert not bad, "commands in the docs that do not parse:\n" + "\n".join(bad)


def test_every_help_example_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    found = _help_examples()
    assert len(found) > 15
    bad = [f"{where}: {' '.join(c.words)}\n    -> {why}" for where, c in found if (why := problem(c))]
    assert not bad, "examples in --help that do not parse:\n" + "\n".join(bad)


def test_the_documented_config_file_holds_only_known_keys() -> None:
    from worker.cli import main

    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    keys = {str(k).replace("-", "_") for k in yaml.safe_load(block)}
    run = main.commands["run"]
    assert isinstance(run, click.Command)
    assert keys <= {p.name for p in run.params}


def test_docs_name_existing_files() -> None:
    """Paths the docs point a reader to (`worker/schema/...`, `docker/compose.yaml`) exist."""
    import re

    missing = []
    for p in SOURCES:
        for path in re.findall(
            r"`((?:lmr|worker|trainer|geocode|bench|docker|tests|docs)/[\w./-]+\.\w+)`", p.read_text()
        ):
            if "*" not in path and not path.startswith("bench/results/") and not (REPO / path).exists():
                missing.append(f"{p.relative_to(REPO)}: {path}")
    assert not missing, "\n".join(missing)


def test_sources_exist() -> None:
    assert all(Path(p).is_file() for p in SOURCES)
