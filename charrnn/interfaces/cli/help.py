"""`--help` that reads well, the same for every command: values named as a user thinks of them (PATH, TEXT, N,
NUMBER, DURATION), defaults as a user would write them, and options in panels where a command names them (`train`:
data, model, training, length, output, then each task's own), so a user finds their task's options first.

It builds on Typer's command class alone: Typer carries its own Click, and `click` itself is not installed with it."""

import types
import typing
from pathlib import Path
from typing import Any

from typer.core import TyperCommand

METAVARS = {Path: "PATH", str: "TEXT", int: "N", float: "NUMBER"}


class HelpCommand(TyperCommand):
    """A command whose help lists its arguments, then its options panel by panel."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """Arguments as usage lines name them: FILES... and [FILE], not Typer's {files}... for a required one."""
        pieces = super().collect_usage_pieces(ctx)
        return [p if p == self.options_metavar else p.upper().replace("{", "").replace("}", "") for p in pieces]

    def format_options(self, ctx: Any, formatter: Any) -> None:
        panels: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            if getattr(param, "hidden", False):
                continue
            if not param.opts[0].startswith("-"):
                panel = "Arguments"
            else:
                panel = getattr(param, "rich_help_panel", None) or "Options"
            panels.setdefault(panel, []).append(help_record(param))
        for panel, records in panels.items():
            with formatter.section(panel):
                formatter.write_dl(records)


def help_record(param: Any) -> tuple[str, str]:
    """The two columns of a parameter's line: how it is written, and what it does with its default."""
    opts = list(param.opts)
    if not opts[0].startswith("-"):  # an argument
        name = (param.metavar or param.name).upper()
        return name + ("..." if param.nargs != 1 or getattr(param, "multiple", False) else ""), param.help or ""
    flag = getattr(param, "is_flag", False)
    written = ", ".join(sorted(opts, key=len)) + ("" if flag else f" {metavar(param)}")
    if param.secondary_opts:
        written += " / " + ", ".join(param.secondary_opts)
    text = param.help or ""
    default = shown_default(param)
    return written, f"{text} [default: {default}]" if default else text


def metavar(param: Any) -> str:
    """The name of an option's value: its own metavar, else from its type."""
    if param.metavar:
        return param.metavar
    annotation = param.type_descriptor.annotation
    while typing.get_origin(annotation) in (typing.Union, types.UnionType, list, typing.Annotated):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return METAVARS.get(annotation, "VALUE")


def shown_default(param: Any) -> str:
    """The default as a user would write it ("" when there is none to show)."""
    if isinstance(param.show_default, str):
        return param.show_default
    value = param.default
    if not param.show_default or value in (None, "", False, (), []) or getattr(param, "is_flag", False):
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)
