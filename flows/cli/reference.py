"""The command reference of docs/commands.md, drawn from the command line itself.

Every command, its usage, its one-line help and each flag (its default, its words) are read off
the typer app, so the page cannot drift from ``fleet COMMAND --help``: ``python -m
flows.cli.reference`` rewrites the part of docs/commands.md between the two markers, and a test
fails when that part differs from what the app says.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer.main

__all__ = ["BEGIN", "END", "PAGE", "reference", "rewrite"]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "commands.md"
BEGIN = (
    "<!-- reference: drawn from the command line by `python -m flows.cli.reference`; not edited -->"
)
END = "<!-- end of reference -->"


def _cell(text: object) -> str:
    """Return text as one markdown table cell: one line, a pipe written so no backslash shows."""
    return " ".join(str(text).split()).replace("|", "&#124;")


def _names(param: Any) -> str:
    flags = [*param.opts, *param.secondary_opts]
    return ", ".join(f"`{flag}`" for flag in flags)


def _words(param: Any) -> str:
    """Return a flag's help, with its default unless unset (the model's, named in the help)."""
    words = param.help or ""
    unset = param.default in (None, False, (), []) or callable(param.default)
    if not unset and "default" not in words:
        words += f" (default: {param.default})"
    return _cell(words)


def _usage(name: str, params: list[Any]) -> str:
    words = [f"fleet {name}", "[OPTIONS]"]
    for p in params:
        if p.param_type_name == "argument":
            metavar = (p.metavar or p.name).upper()
            words.append(metavar + ("..." if p.nargs == -1 else ""))
    return " ".join(words)


def _command(name: str, command: Any) -> list[str]:
    """Return one command's section: usage, help, then a table of its arguments and flags."""
    params = [p for p in command.params if p.name != "help"]
    lines = [f"### `fleet {name}`", "", f"`{_usage(name, params)}`", ""]
    lines += [" ".join((command.help or "").split()), ""]
    lines += ["| argument or flag | |", "|---|---|"]
    for p in params:
        if p.param_type_name == "argument":
            lines.append(f"| `{(p.metavar or p.name).upper()}` | {_words(p)} |")
        else:
            lines.append(f"| {_names(p)} | {_words(p)} |")
    return [*lines, ""]


def reference() -> str:
    """Return the reference of every command, as the command line defines them."""
    from flows.cli.app import app

    group: Any = typer.main.get_command(app)
    lines = [BEGIN, "", "| command | what it does |", "|---|---|"]
    names = list(group.commands)
    for name in names:
        lines.append(f"| [`fleet {name}`](#fleet-{name}) | {_cell(group.commands[name].help)} |")
    lines.append("")
    for name in names:
        lines += _command(name, group.commands[name])
    return "\n".join([*lines, END])


def rewrite(page: Path = PAGE) -> bool:
    """Write the reference into the page between its markers; return whether it changed."""
    text = page.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    new = head + reference() + tail
    page.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    changed = rewrite()
    print(f"{PAGE}: {'rewritten' if changed else 'already up to date'}")
    sys.exit(0)
