"""docs/commands.md says what the command line takes: its reference is drawn from it."""

from __future__ import annotations

import re
from typing import Any

import typer.main

from flows.cli.app import app
from flows.cli.reference import BEGIN, END, PAGE, reference


def test_the_command_reference_is_what_the_command_line_defines() -> None:
    """A flag added, removed or reworded without `python -m flows.cli.reference` fails here."""
    text = PAGE.read_text(encoding="utf-8")
    shown = BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END
    assert shown == reference(), "docs/commands.md is stale: run `python -m flows.cli.reference`"


def test_every_flag_the_hand_written_tables_name_exists() -> None:
    """The main options' table names only flags `fleet provision` (or status, teardown) takes."""
    group: Any = typer.main.get_command(app)
    flags = {
        flag
        for name in ("provision", "status", "teardown")
        for p in group.commands[name].params
        for flag in (*p.opts, *p.secondary_opts)
    }
    text = PAGE.read_text(encoding="utf-8").split(END, 1)[1]  # after the drawn reference
    named = set(re.findall(r"`(--[a-z-]+)", text))
    assert named and named <= flags, sorted(named - flags)


def test_no_docs_page_shows_a_backslash_before_a_pipe() -> None:
    """A backslash before a pipe in a code span shows as it is: the docs say "or" instead."""
    for page in PAGE.parent.glob("*.md"):
        assert "\\|" not in page.read_text(encoding="utf-8"), page.name
