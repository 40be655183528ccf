"""--help that stands alone: options in named sections, a one-line text for each, errors naming option and fix."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from geocode.cli import main as geocode
from lmr.clihelp import SectionedCommand
from trainer.cli import main as trainer
from worker.cli import main as worker

GROUPS = {"lmr-trainer": trainer, "lmr-worker": worker, "lmr-geocode": geocode}
ALL = [(prog, name, cmd) for prog, g in GROUPS.items() for name, cmd in g.commands.items()]


def _help(prog: str, *args: str) -> str:
    res = CliRunner().invoke(GROUPS[prog], [*args, "--help"], prog_name=prog, terminal_width=110)
    assert res.exit_code == 0, res.output
    return res.output


def _headings(text: str) -> list[str]:
    return re.findall(r"^([A-Z][^\n:]*):$", text, flags=re.M)


@pytest.mark.parametrize(
    ("prog", "args", "sections"),
    [
        ("lmr-worker", ["run"], ["Connection (Kafka)", "Topics and consumer group", "Model", "Geocoding", "Batching",
                                 "Health and metrics"]),
        ("lmr-worker", ["replay"], ["Connection (Kafka)", "What to send", "Pace"]),
        ("lmr-trainer", ["run"], ["Data", "Unseen events (held-out protocol)", "Model", "Budget and schedule"]),
        ("lmr-trainer", ["evaluate"], ["Scoring", "Runtime", "Output"]),
        ("lmr-geocode", ["evaluate"], ["Backend", "Rate limits, cache and outages", "Disambiguation", "Output"]),
    ],
)  # fmt: skip
def test_options_are_grouped_as_a_user_thinks(prog: str, args: list[str], sections: list[str]) -> None:
    text = _help(prog, *args)
    heads = _headings(text)
    assert [h for h in heads if h in sections] == sections, heads
    assert heads[-1] == "Other options" and "Options" not in heads
    other = text.split("Other options:", 1)[1]
    listed = re.findall(r"^\s+(-[^\s].*)$", other, flags=re.M)
    assert len(listed) == 1 and "--help" in listed[0], f"options escaped their sections: {listed}"
    assert "Example" in text


@pytest.mark.parametrize(("prog", "name", "cmd"), ALL, ids=[f"{p} {n}" for p, n, _ in ALL])
def test_every_option_has_a_short_help_text(prog: str, name: str, cmd: click.Command) -> None:
    for p in cmd.params:
        if isinstance(p, click.Option):
            assert p.help, f"{prog} {name} {p.opts[0]} has no help text"
            assert "\n" not in p.help.strip() and len(p.help) <= 240, f"{prog} {name} {p.opts[0]}: {p.help!r}"


def test_a_section_naming_an_unknown_option_fails_at_definition() -> None:
    with pytest.raises(ValueError, match="unknown parameters: nope"):

        @click.command(cls=SectionedCommand, sections={"Model": ["model", "nope"]})
        @click.option("--model")
        def cmd(model: str) -> None: ...


def test_missing_help_texts_are_filled_and_given_ones_kept() -> None:
    @click.command(cls=SectionedCommand, sections={"S": ["a", "b"]}, option_help={"a": "Filled.", "b": "Not used."})
    @click.option("--a")
    @click.option("--b", help="Given.")
    def cmd(a: str, b: str) -> None: ...

    assert {p.name: p.help for p in cmd.params} == {"a": "Filled.", "b": "Given."}


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["run", "--batch-size", "many"], ["--batch-size", "integer"]),
        (["run", "--runtime", "fastest"], ["--runtime", "auto"]),
        (["run", "--modle", "x"], ["--modle", "--model"]),
        (["replay", "--rate", "10", "--speed", "2", "--topic", "t", "f.jsonl"], ["--rate", "--speed"]),
    ],
)
def test_an_error_names_the_option_and_the_fix(args: list[str], names: list[str]) -> None:
    res = CliRunner().invoke(worker, args, prog_name="lmr-worker")
    assert res.exit_code == 2, res.output
    for n in names:
        assert n in res.output
