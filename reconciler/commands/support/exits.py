"""How every command ends: exit codes, one-line errors, usage errors that never exit 2.

Exit codes (documented in the README):
  validate  0 valid, 1 invalid
  plan      0 no changes, 2 changes present (deferred steps count), 1 error
  apply     0 converged, 2 applied but deferred steps remain, 1 a step failed or apply refused
  other     0 success, 1 error
Usage errors (an unknown flag or command, a bad value, a missing argument) exit 1, never 2.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click

from reconciler.errors import UserError
from reconciler.sandbox.errors import SandboxError

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def fail(message: str, code: int = EXIT_ERROR) -> None:
    from reconciler.display import printable

    click.echo(f"Error: {printable(message, keep_newlines=True)}", err=True)
    sys.exit(code)


class ReconcilerGroup(click.Group):
    """click exits 2 on a usage error (unknown flag or command, bad value, missing argument);
    here 2 means "changes present" (plan) or "deferred steps remain" (apply), and a pipeline must
    never mistake a typo for it. Every usage error, in any command or subcommand, exits 1 with one
    line: a group's own arguments are parsed in its ``make_context``, its subcommand's inside its
    ``invoke`` (after ``resolve_command`` has named the subcommand, for the message)."""

    _resolved: tuple[str, click.Command] | None = None
    # name -> "module:attribute" of commands defined in other modules, imported when used (a
    # command pays only for its own imports)
    lazy: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            import importlib

            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.UsageError as exc:
            path = f"{parent.command_path} {info_name}" if parent else (info_name or self.name or "reconciler")
            raise click.exceptions.Exit(usage_error(exc, path, self)) from None

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[Any, Any, list[str]]:
        self._resolved = None
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            self._resolved = (f"{ctx.command_path} {name}", command)
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.UsageError as exc:
            path, command = self._resolved or (ctx.command_path, self)
            raise click.exceptions.Exit(usage_error(exc, path, command)) from None


def usage_error(exc: click.exceptions.UsageError, path: str, command: click.Command) -> int:
    """Print a usage error as one line that says where the usage is; return the exit code, 1."""
    if exc.ctx is not None:
        path, command = exc.ctx.command_path, exc.ctx.command
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):  # a group without its command
        click.echo(exc.ctx.get_help(), err=True)
        click.echo(f"Error: '{path}' needs a command, one of those listed above", err=True)
        return EXIT_ERROR
    message = exc.format_message().rstrip(".")
    option = getattr(exc, "option_name", None)
    if option in ("--sandbox", "--sandbox-dir") and "sandbox" not in {p.name for p in command.params}:
        message += f"; '{path}' never connects to AWS or to the sandbox: leave {option} out"
    click.echo(f"Error: {message} (see '{path} --help')", err=True)
    return EXIT_ERROR


def user_errors(func: Callable) -> Callable:
    """Turn the errors a user can cause into one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (UserError, SandboxError) as exc:
            fail(str(exc), exc.exit_code)
        except Exception as exc:
            if not type(exc).__module__.startswith("botocore"):
                raise
            fail(_aws_error(exc))

    return wrapper


def _aws_error(exc: Exception) -> str:
    """One line for an error botocore raised (imported only when there is one)."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    if isinstance(exc, NoCredentialsError):
        ctx = click.get_current_context(silent=True)
        sandbox = ctx is not None and "sandbox" in {p.name for p in ctx.command.params}
        return ("no AWS credentials found: set AWS_PROFILE (or --profile) or the AWS_ACCESS_KEY_ID environment "
                "variables" + (", or use --sandbox to run against the embedded emulator" if sandbox else ""))
    if isinstance(exc, PartialCredentialsError):
        return f"incomplete AWS credentials ({exc}); check your profile or environment"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region, set AWS_REGION, or set spec.region in the manifests"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}; check --endpoint-url and your network"
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        op = getattr(exc, "operation_name", "the request")
        hint = ""
        if err.get("Code") in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
            hint = "; check the credentials and that their IAM policy allows it (see 'reconciler iam-policy')"
        return f"AWS refused {op}: {err.get('Code')}: {err.get('Message', '')}{hint}"
    return f"{type(exc).__name__}: {exc}"
