"""What a careful user notices: times and dates that agree, no internal parameters in a plan, help
that is not cut off, option types that say what they take, completion that works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timezone

import click
import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from tests.day2.helpers import Sandbox
from tests.e2e.helpers import xks_manifest


def test_a_step_that_waited_reports_at_least_the_time_it_waited(sb: Sandbox):
    sb.write("m/payments.yaml", xks_manifest())
    run = sb.run("apply", "--sandbox", "--auto-approve", "m")
    assert run.code == 0, run.both
    waits = [int(s) for s in re.findall(r"… payments-xks:connect_store: CONNECTING \((\d+)s\)", run.out)]
    done = re.search(r"✓ payments-xks:connect_store: CONNECTED \(([\d.]+)s\)", run.out)
    assert waits and done, run.out
    assert float(done.group(1)) >= max(waits)


def test_the_deletion_dates_of_keys_and_of_their_store_agree(sb: Sandbox):
    sb.write("m/payments.yaml", xks_manifest())
    assert sb.run("apply", "--sandbox", "--auto-approve", "m").code == 0
    sb.write("m/payments.yaml", xks_manifest(state="absent"))
    run = sb.run("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m")
    assert run.code == 2, run.both
    keys = re.findall(r"pending deletion until (\S+Z)", run.out)
    store = re.search(r"payments-xks:delete_store: deferred until (\S+Z)", run.out)
    rerun = re.search(r"re-run after (\S+Z)", run.out)
    assert len(keys) == 2 and store and rerun, run.out
    assert store.group(1) == rerun.group(1) == max(keys)
    status = sb.run("status", "--sandbox", "m")
    assert max(keys) in status.out  # NEXT DELETION: the same second


def test_the_hidden_enabled_states_read_as_words_not_as_a_parameter():
    from reconciler.plan.model import Action, Plan, Step
    from reconciler.plan.render import render_markdown, render_text

    step = Step(id="s:connect_store", action=Action.connect_store, store="s", reason="reconnects",
                params={"keysEnabled": {"key-a": True, "key-b": False}})
    plan = Plan(region="us-east-1", steps=[step], findings=[], created_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
                tool_version="0", manifests_digest="sha256:0", live_digest="sha256:0", manifest_paths=("m",),
                managed_stores=("s",), observed={})
    for text in (render_text(plan), render_markdown(plan)):
        assert "keysEnabled" not in text and '"key-a": true' not in text
        assert "then enables key(s) key-a" in text and "then disables key(s) key-b" in text
    assert plan.to_dict()["steps"][0]["params"]["keysEnabled"] == {"key-a": True, "key-b": False}  # the plan file


def _groups(group: click.Group = cli, path: tuple[str, ...] = ()):
    yield path, group
    for name in group.list_commands(click.Context(group)):
        command = group.get_command(click.Context(group), name)
        if isinstance(command, click.Group):
            yield from _groups(command, path + (name,))


@pytest.mark.parametrize("path,group", list(_groups()), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_the_command_lists_in_help_are_not_cut(path, group):
    out = CliRunner().invoke(cli, [*path, "--help"], prog_name="reconciler", terminal_width=80).output
    listing = out.split("Commands:", 1)[1]
    for name in group.list_commands(click.Context(group)):
        command = group.get_command(click.Context(group), name)
        line = next(line for line in listing.splitlines() if line.strip().startswith(name + " "))
        assert command.short_help and line.rstrip().endswith(command.short_help), line
        assert "..." not in line


def test_option_types_and_variables_are_shown():
    apply_help = CliRunner().invoke(cli, ["apply", "--help"], terminal_width=200).output
    assert re.search(r"--timeout DURATION", apply_help) and re.search(r"--lock-timeout DURATION", apply_help)
    assert "TEXT" not in re.search(r"--timeout \S+", apply_help).group(0)
    assert "env var: RECONCILER_LOCK_TABLE" in apply_help and "env var: RECONCILER_SANDBOX_DIR" in apply_help
    serve_help = CliRunner().invoke(cli, ["sandbox", "serve", "--help"], terminal_width=200).output
    assert "--sandbox-dir DIR" in serve_help


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_as_the_readme_says(shell):
    from tests.day2.helpers import REPO

    assert f"_RECONCILER_COMPLETE={shell}_source reconciler" in (REPO / "README.md").read_text()
    env = {**os.environ, "_RECONCILER_COMPLETE": f"{shell}_source"}
    run = subprocess.run([sys.executable, "-c", "from reconciler.cli import main; main()"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "_RECONCILER_COMPLETE" in run.stdout, run.stderr
    env = {**os.environ, "_RECONCILER_COMPLETE": "bash_complete", "COMP_WORDS": "reconciler sandbox se",
           "COMP_CWORD": "2"}
    words = subprocess.run([sys.executable, "-c", "from reconciler.cli import main; main()"], env=env,
                           capture_output=True, text=True, timeout=60).stdout
    assert "seed-cluster" in words and "serve" in words
