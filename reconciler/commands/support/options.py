"""Options and output that several commands share: the connection flags, durations, the next
step a command prints (with the flags it was given), and how a plan is printed."""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any, Callable, Sequence

import click
from click.core import ParameterSource


class Duration(click.ParamType):
    """90s, 15m, 2h, 8d, 1w or sums such as 1d12h, as seconds; 0 is allowed."""

    name = "duration"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        from reconciler.sandbox.clock import parse_duration

        if str(value).strip() == "0":
            return 0.0
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()


def given_flags(*names: str) -> list[str]:
    """The options among ``names`` that were typed on this command line (not defaults, not the
    environment, which the shell still has), as words to repeat in a printed next step."""
    ctx = click.get_current_context()
    words: list[str] = []
    for param in ctx.command.params:
        if param.name not in names or ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE:
            continue
        value = ctx.params.get(param.name)
        option = max(param.opts, key=len)
        if getattr(param, "is_flag", False):
            words += [option] if value else []
        elif value is not None:
            words += [option, str(value)]
    return words


CONNECTION_PARAMS = ("profile", "region", "endpoint_url", "sandbox", "sandbox_dir")


def next_step(*words: str, args: Sequence[str] = ()) -> str:
    """A command to print as the next step, quoted to work when pasted; ``args`` are its positional
    arguments (paths), written so that one starting with '-' is not read as an option."""
    return shlex.join(["reconciler", *words, *(f"./{a}" if a.startswith("-") else a for a in args)])


def connection_options(func: Callable | None = None, *,
                       region_help: str = "AWS region (else AWS_REGION, AWS_DEFAULT_REGION, or the manifests' "
                                          "spec.region).") -> Any:
    """The connection flags; ``@connection_options``, or ``@connection_options(region_help=...)`` for
    a command whose region does not come from manifests."""
    if func is None:
        return lambda f: connection_options(f, region_help=region_help)
    options = [
        click.option("--profile", envvar="AWS_PROFILE", show_envvar=True,
                     help="AWS profile (default: the standard boto3 chain)."),
        click.option("--region", help=region_help),
        click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL_KMS", show_envvar=True,
                     help="KMS endpoint, e.g. a running 'reconciler sandbox serve'."),
        click.option("--sandbox", is_flag=True, help="Use the embedded KMS emulator instead of AWS (no credentials needed)."),
        sandbox_dir_option("State directory of the embedded sandbox."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def target_option(func: Callable) -> Callable:
    """``--target ACCOUNT/REGION`` (repeatable): limit a fleet run to these targets."""
    return click.option("--target", "targets", multiple=True, metavar="ACCOUNT/REGION",
                        help="Only this account and region (repeatable); otherwise every target the manifests "
                             "name (with a reconciler.yaml).")(func)


def sandbox_dir_option(help_text: str) -> Callable:
    return click.option("--sandbox-dir", envvar="RECONCILER_SANDBOX_DIR", show_envvar=True,
                        type=click.Path(file_okay=False), metavar="DIR",
                        help=f"{help_text} [default: .reconciler/sandbox]")


FORMATS = click.Choice(["text", "json", "markdown"])


def _color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def print_plan(plan, fmt: str) -> None:
    from reconciler.plan.fleet_render import RENDERERS  # a plan of one target or of a fleet

    if fmt == "text" and _color(sys.stdout):
        from rich.console import Console

        Console(highlight=False, soft_wrap=True).print(RENDERERS["text"](plan, color=True), end="")
    else:
        click.echo(RENDERERS[fmt](plan), nl=False)



def confirm(question: str) -> bool:
    return click.confirm(question, default=False)
