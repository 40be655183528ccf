"""``--help`` that stands alone: options grouped under the headings a user thinks in.

``@group.command("run", cls=SectionedCommand, sections=RUN_SECTIONS, option_help=MORE_HELP)`` lists the
options section by section in the mapping's order (title -> parameter names); options no section names
land in "Other options". ``option_help`` gives a one-line text to options declared without one, so the
declarations stay where they are. A section naming an unknown parameter fails at import, so the mapping
cannot drift from the command.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click


class SectionedCommand(click.Command):
    """A click command whose help lists its options in named sections."""

    def __init__(
        self,
        *args: Any,
        sections: Mapping[str, Sequence[str]] | None = None,
        option_help: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.sections = dict(sections or {})
        names = {p.name for p in self.params}
        unknown = sorted({n for group in self.sections.values() for n in group} - names)
        if unknown:
            raise ValueError(f"help sections of {self.name!r} name unknown parameters: {', '.join(unknown)}")
        for p in self.params:
            if isinstance(p, click.Option) and not p.help and p.name in (option_help or {}):
                p.help = (option_help or {})[p.name]

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        records = {p.name: rec for p in self.get_params(ctx) if (rec := p.get_help_record(ctx))}
        placed: set[str | None] = set()
        for title, group in self.sections.items():
            rows = [records[n] for n in group if n in records]
            placed.update(group)
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
        rest = [rec for name, rec in records.items() if name not in placed]
        if rest:
            with formatter.section("Other options"):
                formatter.write_dl(rest)
