"""``python -m lmr.results render``: docs/results.md and the README's headline table from results/*.json."""

from __future__ import annotations

from pathlib import Path

import click

from lmr.results import REPO


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Render the result files (results/*.json) into the docs."""


@main.command("render")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=REPO,
    show_default=True,
    help="Repository holding results/, docs/ and README.md.",
)
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when a rendered file is out of date.")
def render_cmd(root: Path, check: bool) -> None:
    """Write docs/results.md and the README's headline table (or check that they are current).

    \b
    Example:
      python -m lmr.results render
      python -m lmr.results render --check
    """
    from lmr.results.render import stale, write

    if check:
        old = stale(root)
        if old:
            names = ", ".join(str(p.relative_to(root)) for p in old)
            raise click.ClickException(f"{names} out of date with results/. Fix: run python -m lmr.results render.")
        click.echo("rendered files are current")
        return
    for p in write(root):
        click.echo(f"rendered {p.relative_to(root)}")


if __name__ == "__main__":
    main()
