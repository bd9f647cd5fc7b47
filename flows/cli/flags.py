"""The command line's flags, drawn from the options models: declared, defaulted, explained once.

Every field of an options model becomes a ``--flag`` whose help is the field's description and
whose default is "unset" (None): the model alone holds the default, so ``--rate 0`` is refused
by the model's own rule rather than quietly read as "the default". A command decorated with
``with_options`` receives the flags the user set as ``values``, to build the options from.

A field whose ``json_schema_extra`` names an ``alone`` value is a flag with an optional value
(``--approve`` alone is ``--approve=canary``). click has no such options, so ``FlagsGroup``
spells the value out before click parses: the value may follow as ``--approve=waves`` or, like
every other option's, as its own word (``--approve waves``), taken when it is one of the field's
values, else the flag stands alone and the word is the next argument.

``with_parser`` does the same for a command whose flags an argparse parser holds (the
simulator's, which ``python -m fleet.simulator`` reads too): each flag becomes a typer option, so
its help looks like every other command's, and the flags given go back to the parser as argv.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import typer
from pydantic import BaseModel
from typer.core import TyperGroup

from flows.cli.render import err, say

__all__ = [
    "FlagsGroup",
    "optional_values",
    "parser_argv",
    "parser_flags",
    "spell_out",
    "usage_error",
    "with_options",
    "with_parser",
]

F = TypeVar("F", bound=Callable[..., Any])


def _flag_type(annotation: Any) -> Any:
    """Return the type a flag is read as: the field's own, or text the model then reads."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]  # X | None: an X
    if annotation in (bool, int, float, str) or get_origin(annotation) is Literal:
        return annotation
    return str  # a union (a number or 'auto' ...): the model's validator reads the text


def flags(
    model: type[BaseModel], *, only: Collection[str] | None = None, skip: Collection[str] = ()
) -> list[inspect.Parameter]:
    """Return one keyword-only, unset-by-default typer option per field of the model."""
    out = []
    for name, field in model.model_fields.items():
        if (only is not None and name not in only) or name in skip:
            continue
        kind = _flag_type(field.annotation)
        help_ = field.description or ""
        alone = _alone(field.json_schema_extra)
        if alone is not None:
            help_ += f" Alone, it means {alone}; a value may follow as its own word or after =."
        if field.default not in (None, False):  # the model's default, shown; the flag stays unset
            help_ += f" (default: {field.default})"
        flag = f"--{name.replace('_', '-')}"
        if kind is bool:  # both ways: a default of True must be turned off (--no-preflight)
            flag = f"{flag}/--no-{name.replace('_', '-')}"
        option = typer.Option(flag, help=help_)
        out.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[kind | None, option],
            )
        )
    return out


def _alone(extra: object) -> str | None:
    """Return the value a flag given alone stands for, if its field names one."""
    value = extra.get("alone") if isinstance(extra, dict) else None
    return value if isinstance(value, str) else None


def optional_values(*models: type[BaseModel]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Return the flags with an optional value: each one's value alone, and the values it takes."""
    found = {}
    for model in models:
        for name, field in model.model_fields.items():
            alone = _alone(field.json_schema_extra)
            if alone is not None:
                values = tuple(str(v) for v in get_args(_flag_type(field.annotation)))
                found[f"--{name.replace('_', '-')}"] = (alone, values)
    return found


def spell_out(
    args: Sequence[str], optional: Mapping[str, tuple[str, Collection[str]]]
) -> list[str]:
    """Return the arguments with each optional-value flag and its value made one word."""
    out: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":  # what follows is arguments, not flags
            return [*out, arg, *rest]
        if arg in optional:
            alone, values = optional[arg]
            arg = f"{arg}={rest.pop(0) if rest and rest[0] in values else alone}"
        out.append(arg)
    return out


class FlagsGroup(TyperGroup):
    """The commands' group: optional values spelt out; usage errors said as every error is."""

    optional: Mapping[str, tuple[str, Collection[str]]] = {}

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # click's Context, typer's copy
        """Parse the arguments once optional values are made one word with their flags."""
        return super().parse_args(ctx, spell_out(args, self.optional))

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run a command; a usage error is one ``error:`` line, as every other error (exit 2)."""
        run = functools.partial(
            super().main, args, prog_name, complete_var, False, windows_expand_args, **extra
        )
        if not standalone_mode:
            return run()
        try:
            code = run()
        except typer.TyperException as exc:  # typer's click errors: usage, bad parameters
            sys.exit(usage_error(exc))
        except typer.Abort:
            say(err, "error: aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def usage_error(exc: typer.TyperException) -> int:
    """Print a usage error as the usage, then one ``error:`` line (typer boxes it); its exit."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # `fleet` alone: the help is printed already
        return exc.exit_code
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        say(err, ctx.get_usage())
        say(err, f"Try '{ctx.command_path} --help' for help.")
    say(err, f"error: {getattr(exc, 'format_message', exc.__str__)()}")
    return exc.exit_code


def with_options(
    model: type[BaseModel], *, only: Collection[str] | None = None, skip: Collection[str] = ()
) -> Callable[[F], F]:
    """Give a command the model's fields as flags; it receives those the user set as ``values``."""

    def decorate(command: F) -> F:
        # Evaluated: the command's own annotations are strings here (postponed evaluation), and
        # typer reads the signature given below as it stands.
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "values"]
        extra = flags(model, only=only, skip={*skip, *(p.name for p in own)})
        names = {p.name for p in extra}

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            values = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
            return command(values=values, **kwargs)

        params = [*own, *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in extra)]
        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return typing.cast(F, wrapper)

    return decorate


def _parser_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Return the parser's flags (its --help aside), each a typer option to be."""
    return [
        a
        for a in parser._actions  # argparse keeps its flags only there (no public listing)
        if a.option_strings and not isinstance(a, argparse._HelpAction)
    ]


def parser_flags(parser: argparse.ArgumentParser) -> list[inspect.Parameter]:
    """Return one keyword-only, unset-by-default typer option per flag of an argparse parser."""
    out = []
    for action in _parser_options(parser):
        boolean = isinstance(action, argparse.BooleanOptionalAction)
        flag = action.option_strings[0]
        if boolean:
            flag = f"{flag}/--no-{flag.removeprefix('--')}"
        help_ = action.help or ""
        if action.default not in (None, False) and "default" not in help_:  # else said already
            help_ += f" (default: {action.default})"
        kind: Any = bool if boolean else (action.type if isinstance(action.type, type) else str)
        out.append(
            inspect.Parameter(
                action.dest,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[kind | None, typer.Option(flag, help=help_)],
            )
        )
    return out


def parser_argv(parser: argparse.ArgumentParser, values: Mapping[str, Any]) -> list[str]:
    """Return the argparse arguments that set the flags given (a value of None: not given)."""
    argv: list[str] = []
    for action in _parser_options(parser):
        value = values.get(action.dest)
        flag = action.option_strings[0]
        if value is None:
            continue
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{flag.removeprefix('--')}")
        else:
            argv += [flag, str(value)]
    return argv


def with_parser(parser: argparse.ArgumentParser) -> Callable[[F], F]:
    """Give a command an argparse parser's flags; it receives the argv they make as ``argv``."""

    def decorate(command: F) -> F:
        params = parser_flags(parser)

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            return command(argv=parser_argv(parser, kwargs))

        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return typing.cast(F, wrapper)

    return decorate
