"""Usage errors exit 1, never 2 (which means "changes present" or "deferred steps remain"), with one
line on stderr and no traceback: every command and subcommand, driven with a bad flag, a bad option
value and a missing argument."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from tests.e2e.helpers import clean_env

pytestmark = pytest.mark.e2e


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command below ``group`` (groups included), by its words."""
    found = [(path, group)]
    for name in group.list_commands(click.Context(group)):
        command = group.get_command(click.Context(group), name)
        if isinstance(command, click.Group):
            found += commands(command, path + (name,))
        else:
            found.append((path + (name,), command))
    return found


COMMANDS = commands()
IDS = [" ".join(words) or "reconciler" for words, _ in COMMANDS]


def _option(param: click.Parameter) -> str:
    return max(param.opts, key=len)


def bad_values(command: click.Command, a_file: str) -> list[list[str]]:
    """A bad value for each option or argument whose type checks values; a flag given a value
    for commands that have none."""
    cases = []
    for param in command.params:
        kind = param.type
        if isinstance(param, click.Option) and param.is_flag:
            continue
        bad = None
        if isinstance(kind, click.Choice):
            bad = "not-a-choice"
        elif isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
            bad = "many"
        elif kind.name == "duration":
            bad = "soon"
        elif isinstance(kind, click.Path) and not kind.file_okay:
            bad = a_file  # a file where a directory is wanted
        elif isinstance(kind, click.Path) and kind.exists:
            bad = "/nonexistent/file"
        if bad is None:
            continue
        if isinstance(param, click.Argument):
            cases.append([bad])
        else:
            cases.append([_option(param), bad])
    flags = [p for p in command.params if isinstance(p, click.Option) and p.is_flag]
    cases.append([f"{_option(flags[0]) if flags else '--help'}=yes"])  # a flag takes no value
    return cases


def missing_arguments(command: click.Command) -> list[list[str]]:
    """No arguments at all where one is required (a group without its command included), and
    each option that takes a value given without one."""
    cases = []
    if isinstance(command, click.Group) or any(p.required for p in command.params if isinstance(p, click.Argument)):
        cases.append([])
    cases += [[_option(p)] for p in command.params
              if isinstance(p, click.Option) and not p.is_flag and p.name != "help"]
    return cases


def invoke(args: list[str]):
    return CliRunner().invoke(cli, args, prog_name="reconciler", catch_exceptions=False)


def assert_usage_error(result, args) -> None:
    shown = " ".join(["reconciler", *args])
    assert result.exit_code == 1, f"{shown}: exit {result.exit_code}\n{result.output}"
    assert "Traceback" not in result.output, shown
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, f"{shown}: {result.stderr}"
    assert "--help" in errors[0] or "needs a command" in errors[0], errors[0]


@pytest.mark.parametrize("words,command", COMMANDS, ids=IDS)
def test_every_command_exits_1_on_a_bad_flag_a_bad_value_and_a_missing_argument(words, command, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    values, missing = bad_values(command, str(a_file)), missing_arguments(command)
    # every command is driven with all three kinds; only `schema` takes neither an argument nor
    # an option with a value, so nothing can be missing from it
    assert values
    assert missing or words == ("schema",), words
    for case in [["--no-such-flag"], *values, *missing]:
        args = [*words, *case]
        assert_usage_error(invoke(args), args)


def test_the_messages_say_what_is_wrong_and_where_the_usage_is():
    unknown = invoke(["plan", "--bogus", "manifests"])
    assert unknown.stderr == "Error: No such option '--bogus'. Did you mean '--out'? (see 'reconciler plan --help')\n"
    value = invoke(["apply", "plans/plan.json", "--format", "yaml"])
    assert "Invalid value for '--format': 'yaml' is not one of 'text', 'json'" in value.stderr
    assert invoke(["sandbox", "advance"]).stderr == \
        "Error: Missing argument 'DURATION' (see 'reconciler sandbox advance --help')\n"
    offline = invoke(["validate", "--sandbox", "manifests"])
    assert "'reconciler validate' never connects to AWS or to the sandbox: leave --sandbox out" in offline.stderr
    bare = invoke([])
    assert bare.exit_code == 1 and "Commands:" in bare.stderr
    assert bare.stderr.rstrip().endswith("Error: 'reconciler' needs a command, one of those listed above")


def test_force_unlock_without_a_table_is_a_usage_error_and_the_variable_is_enough(monkeypatch):
    monkeypatch.delenv("RECONCILER_LOCK_TABLE", raising=False)
    assert_usage_error(invoke(["force-unlock", "run-1"]), ["force-unlock", "run-1"])
    help_text = invoke(["force-unlock", "--help"]).output
    assert "RECONCILER_LOCK_TABLE" in help_text and "[required]" not in help_text


@pytest.mark.parametrize("args", [
    ["plan", "--bogus", "manifests"],
    ["apply", "plans/plan.json", "--format", "yaml"],
    [],
    ["sandbox"],
    ["sandbox", "advance", "soon"],
    ["demo", "--manifests", "/nonexistent"],
], ids=lambda a: " ".join(a) or "bare")
def test_in_a_real_process_the_exit_code_is_1_without_a_traceback(args, tmp_path: Path):
    env = clean_env()
    run = subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 1, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("Error: ")
