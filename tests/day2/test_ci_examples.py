"""The GitHub Actions examples are valid YAML, and every `reconciler ...` they (and the docs) run is a
command the CLI has, with options it accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from reconciler.cli import cli
from tests.day2.helpers import REPO

WORKFLOWS = sorted((REPO / "examples" / "github-actions").glob("*.yml"))
SEPARATORS = {"|", "||", "&", "&&", ";", ";;", "(", ")", ">", ">>", "<", "2>", "<<"}


def reconciler_invocations(script: str) -> list[list[str]]:
    """The argument lists of every `reconciler` command in a shell script."""
    script = re.sub(r"\\\n", " ", script)
    found = []
    for line in script.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "reconciler" not in line:
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:  # an unterminated quote inside an inline python heredoc line, etc.
            continue
        for i, token in enumerate(tokens):
            if token == "reconciler" and (i == 0 or tokens[i - 1] in SEPARATORS or tokens[i - 1] in ("then", "else", "do")):
                args = []
                for arg in tokens[i + 1:]:
                    if arg in SEPARATORS:
                        break
                    args.append(arg)
                found.append(args)
    return found


def check_invocation(args: list[str]) -> None:
    """Parse ``args`` as click would: an unknown command or option, a bad choice or a missing
    argument raises."""
    command: click.Command = cli
    rest, path = list(args), ["reconciler"]
    while isinstance(command, click.Group):
        assert rest and not rest[0].startswith("-"), f"reconciler {' '.join(args)}: no subcommand"
        name, rest = rest[0], rest[1:]
        sub = command.get_command(click.Context(command), name)
        assert sub is not None, f"reconciler {' '.join(args)}: no command {name!r}"
        command, path = sub, path + [name]
    command.make_context(" ".join(path), rest)


def _run_scripts(workflow: dict) -> list[tuple[str, str]]:
    out = []
    for job_name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if "run" in step:
                out.append((f"{job_name}/{step.get('name', step['run'][:30])}", step["run"]))
    return out


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # options like demo's --manifests check paths relative to the repository


def test_there_are_the_three_workflows():
    assert [p.name for p in WORKFLOWS] == ["reconciler-apply.yml", "reconciler-deferred.yml", "reconciler-plan.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_valid_yaml_with_jobs_and_steps(path: Path):
    workflow = yaml.safe_load(path.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert triggers, "no triggers"
    assert workflow["name"]
    for name, job in workflow["jobs"].items():
        assert job["runs-on"] == "ubuntu-latest", name
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), step
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]
        for need in ([job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", [])):
            assert need in workflow["jobs"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_runs_only_commands_and_options_the_cli_has(path: Path):
    workflow = yaml.safe_load(path.read_text())
    calls = [args for _, script in _run_scripts(workflow) for args in reconciler_invocations(script)]
    assert calls, "the workflow runs no reconciler command"
    for args in calls:
        check_invocation(args)


def test_the_workflows_fit_together():
    plan, apply, deferred = (yaml.safe_load((REPO / "examples" / "github-actions" / n).read_text())
                             for n in ("reconciler-plan.yml", "reconciler-apply.yml", "reconciler-deferred.yml"))
    triggers = lambda w: w.get("on", w.get(True))  # noqa: E731
    assert "pull_request" in triggers(plan)
    assert triggers(apply)["push"]["branches"] == ["main"]
    assert "schedule" in triggers(deferred) and "workflow_dispatch" in triggers(deferred)
    # the apply workflow downloads what the plan workflow uploads, from that workflow
    uploaded = [s["with"]["name"] for s in plan["jobs"]["plan"]["steps"] if "upload-artifact" in s.get("uses", "")]
    assert uploaded == ["reconciler-plan"]
    download = next(s["run"] for s in apply["jobs"]["plan"]["steps"] if "gh run download" in s.get("run", ""))
    assert "--workflow reconciler-plan.yml" in download and "--name reconciler-plan" in download
    # plans are saved and applied as files; destruction happens only in the protected environment
    assert any(args[:1] == ["plan"] and "--out" in args for _, s in _run_scripts(plan) for args in reconciler_invocations(s))
    applies = [args for _, s in _run_scripts(apply) + _run_scripts(deferred) for args in reconciler_invocations(s)
               if args[:1] == ["apply"]]
    assert applies and all(args[1] == "plans/plan.json" for args in applies)
    assert "kms-destroy" in apply["jobs"]["apply"]["environment"]
    assert deferred["jobs"]["finish"]["environment"] == "kms-destroy"
    assert apply["concurrency"]["group"] == deferred["concurrency"]["group"]


@pytest.mark.parametrize("doc", ["README.md", "docs/ci.md"])
def test_docs_name_only_commands_the_cli_has(doc: str):
    text = (REPO / doc).read_text()
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", text, re.S)
    calls = [args for block in blocks for args in reconciler_invocations(block.replace("$ ", ""))]
    assert calls
    for args in calls:
        check_invocation(args)


def test_the_checker_catches_mistakes():
    with pytest.raises(AssertionError):
        check_invocation(["deploy", "manifests"])
    with pytest.raises(click.UsageError):
        check_invocation(["plan", "--no-such-flag", "manifests"])
    with pytest.raises(click.UsageError):
        check_invocation(["sandbox", "advance"])
    check_invocation(["sandbox", "advance", "8d"])
    assert reconciler_invocations('code=0\nreconciler plan m --out p.json || code=$?\nx=$(reconciler show p.json)') == [
        ["plan", "m", "--out", "p.json"], ["show", "p.json"]]


# -- exit codes: a workflow step reports success only on the codes that mean it -----------------

RECONCILER_STEPS = [  # (workflow, job, step name, exit codes the step treats as success)
    ("reconciler-plan.yml", "plan", "Plan", {0, 2}),
    ("reconciler-apply.yml", "plan", "Plan again on main (run by hand)", {0, 2}),
    ("reconciler-apply.yml", "apply", "Apply the plan file", {0, 2}),
    ("reconciler-deferred.yml", "check", "Plan", {0, 2}),
    ("reconciler-deferred.yml", "finish", "Apply the deferred deletions", {0, 2}),
]


def _step_script(workflow: str, job: str, name: str) -> str:
    data = yaml.safe_load((REPO / "examples" / "github-actions" / workflow).read_text())
    return next(s["run"] for s in data["jobs"][job]["steps"] if s.get("name") == name)


@pytest.mark.parametrize("workflow,job,name,success", RECONCILER_STEPS, ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("code", [0, 1, 2, 3, 127])
def test_a_step_succeeds_only_on_the_exit_codes_that_mean_success(tmp_path, workflow, job, name, success, code):
    """Each step runs as GitHub runs it (bash -eo pipefail), with a `reconciler` that exits
    ``code``: a usage error or failure (1) and anything unexpected fail the job; 0 and 2 do not."""
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "reconciler"
    # `show --format json` must print a plan for the steps that inspect it; every other call exits `code`
    fake.write_text(f'#!/bin/sh\ncase "$*" in *"--format json"*) echo \'{{"steps": []}}\'; exit 0;; '
                    f'*"--format markdown"*) exit 0;; esac\nexit {code}\n')
    fake.chmod(0o755)
    script = tmp_path / "step.sh"
    script.write_text(_step_script(workflow, job, name))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "AWS_REGION": "us-east-1", "DESTRUCTIVE": "false",
           "GITHUB_OUTPUT": str(tmp_path / "out"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary")}
    run = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=30)
    assert (run.returncode == 0) == (code in success), (code, run.stdout, run.stderr)
    if code == 1:
        assert "::notice::" not in run.stdout and "Converged" not in run.stdout
