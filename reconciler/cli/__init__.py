"""The command line: the ``reconciler`` group, assembled from :mod:`reconciler.commands`.

Each command lives in a module of its own and is imported only when it runs (``--help`` and
``--version`` import none of them, nor boto3, moto or rich). Exit codes and the handling of usage
errors are in :mod:`reconciler.commands.support.exits`.
"""

from __future__ import annotations

import sys

import click

from reconciler import __version__
from reconciler.commands.support.exits import ReconcilerGroup

# command name -> "module:attribute"
COMMANDS = {
    "validate": "reconciler.commands.validate:validate",
    "schema": "reconciler.commands.schema:schema",
    "plan": "reconciler.commands.plan:plan",
    "preflight": "reconciler.commands.preflight:preflight",
    "show": "reconciler.commands.show:show",
    "apply": "reconciler.commands.apply:apply",
    "force-unlock": "reconciler.commands.force_unlock:force_unlock",
    "status": "reconciler.commands.status:status",
    "export": "reconciler.commands.export:export",
    "iam-policy": "reconciler.commands.iam_policy:iam_policy",
    "sandbox": "reconciler.commands.sandbox:sandbox",
    "demo": "reconciler.commands.demo:demo",
}


@click.group(cls=ReconcilerGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="reconciler")
def cli() -> None:
    """Declarative reconciler for AWS KMS custom key stores (XKS and CloudHSM).

    Declare key stores in YAML manifests; `plan` shows what would change, `apply` makes it so.
    plan, apply, status and export take --sandbox to run against the embedded emulator instead of
    AWS; validate, show, schema and iam-policy never connect to either. Exit codes: 0 success
    (no changes), 2 changes present (plan) or deferred steps remain (apply), 1 anything else,
    usage errors included.
    """


cli.lazy = COMMANDS  # type: ignore[attr-defined]


def main() -> None:
    from reconciler.cli import accel

    code = accel.run(sys.argv[1:])  # a sandbox command, run by the process that has the emulator loaded
    if code is not None:
        sys.exit(code)
    try:
        cli(prog_name="reconciler")
    finally:
        accel.start_server(sys.argv[1:])  # for the next sandbox command


if __name__ == "__main__":
    main()
