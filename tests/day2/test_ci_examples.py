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
FLEET_WORKFLOW = REPO / "examples" / "github-actions-fleet" / "reconciler-fleet.yml"
# each workflow with the manifests it plans: the repository's own, or the fleet example repository's
PLANNED = {**{p: REPO / "manifests" for p in WORKFLOWS}, FLEET_WORKFLOW: REPO / "examples" / "fleet"}
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


@pytest.mark.parametrize("path", [*WORKFLOWS, FLEET_WORKFLOW], ids=lambda p: p.name)
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
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", step["uses"]), step["uses"]
        for need in ([job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", [])):
            assert need in workflow["jobs"]


ACTION = "your-org/reconciler@"  # the examples' reference to this repository's action.yml


def _action_steps(workflow: dict) -> list[tuple[str, dict]]:
    return [(job_name, step) for job_name, job in workflow["jobs"].items() for step in job["steps"]
            if step.get("uses", "").startswith(ACTION)]


def _evaluate(value: str, workflow: dict) -> str:
    """The examples' expressions, as they evaluate on a run where everything is requested:
    ${{ env.X }} from the workflow's env, `cond && 'a' || 'b'` as 'a', step outputs as their value."""
    def one(match: re.Match) -> str:
        expr = match.group(1).strip()
        if expr.startswith("env."):
            return str(workflow["env"][expr[4:]])
        chosen = re.search(r"&&\s*'([^']*)'", expr)
        if chosen:
            return chosen.group(1)
        if expr.endswith("outputs.plan-file"):
            return "plans/plan.json"
        raise AssertionError(f"unexpected expression {expr!r}")

    return re.sub(r"\$\{\{(.*?)\}\}", one, str(value))


def action_invocations(workflow: dict, tmp_path: Path) -> list[list[str]]:
    """The `reconciler` command lines the action's run step makes for each of the workflow's
    uses of the action, with a recording `reconciler` (exit 0)."""
    from tests.integrations.github import fake_reconciler, run_step

    calls = []
    for n, (_, step) in enumerate(_action_steps(workflow)):
        bin_dir = tmp_path / f"bin{n}"
        fake_reconciler(bin_dir, 0)
        inputs = {k: _evaluate(v, workflow) for k, v in (step.get("with") or {}).items()}
        run = run_step("run", tmp_path / f"w{n}", inputs, bin_dir=bin_dir)
        assert run.code == 0, run.both
        calls += [c for c in run.calls if c[:1] != ["show"] or c[-1] not in ("json", "markdown")]
    return calls


@pytest.mark.parametrize("path", [*WORKFLOWS, FLEET_WORKFLOW], ids=lambda p: p.name)
def test_workflow_runs_only_commands_and_options_the_cli_has(path: Path, tmp_path: Path):
    workflow = yaml.safe_load(path.read_text())
    calls = [args for _, script in _run_scripts(workflow) for args in reconciler_invocations(script)]
    calls += action_invocations(workflow, tmp_path)
    assert _action_steps(workflow), "the workflow does not use the reconciler action"
    assert calls, "the workflow runs no reconciler command"
    for args in calls:
        check_invocation(args)


def _plan_steps(workflow: dict) -> list[tuple[str, dict]]:
    """Every step that runs `reconciler plan`: the action's plan command, or a run: script."""
    found = []
    for job_name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if step.get("uses", "").startswith(ACTION) and (step.get("with") or {}).get("command", "plan") == "plan":
                found.append((job_name, step))
            elif any(args[:1] == ["plan"] for args in reconciler_invocations(step.get("run", ""))):
                found.append((job_name, step))
    return found


@pytest.mark.parametrize("path", list(PLANNED), ids=lambda p: p.name)
def test_every_plan_step_maps_each_access_key_id_the_manifests_use(path: Path):
    """docs/ci.md: plan resolves the {fromEnv} access key ids, so each plan step maps every one its
    manifests use under its env: (or the plan fails: "environment variable ... is not set")."""
    names = {n for f in PLANNED[path].rglob("*.yaml")
             for n in re.findall(r"accessKeyId: \{fromEnv: ([A-Z0-9_]+)\}", f.read_text())}
    assert names
    workflow = yaml.safe_load(path.read_text())
    steps = _plan_steps(workflow)
    assert steps, "the workflow plans nowhere"
    for job_name, step in steps:
        env = {**(workflow.get("env") or {}), **(workflow["jobs"][job_name].get("env") or {}), **(step.get("env") or {})}
        assert names <= set(env), (job_name, step.get("name"), sorted(names - set(env)))


@pytest.mark.parametrize("path", [*WORKFLOWS, FLEET_WORKFLOW], ids=lambda p: p.name)
def test_every_job_installs_reconciler_through_the_action_before_running_it(path: Path):
    """The repository a workflow runs in holds manifests, not reconciler: each job installs it
    with the action (pinned to a reviewed ref) before a run: script calls it, never `pip install .`."""
    workflow = yaml.safe_load(path.read_text())
    for job_name, job in workflow["jobs"].items():
        installed = False
        for step in job["steps"]:
            assert "pip install ." not in step.get("run", ""), (job_name, step)
            if step.get("uses", "").startswith(ACTION) and (step.get("with") or {}).get("install", "") != "skip":
                installed = True
            uses_it = reconciler_invocations(step.get("run", "")) or "reconciler." in step.get("run", "") or (
                step.get("uses", "").startswith(ACTION))
            assert installed or not uses_it, (job_name, step.get("name"), "reconciler is not installed yet")


def test_the_fleet_workflow_plans_the_fleet_example_with_its_own_env(tmp_path: Path):
    """The fleet workflow's plan step, as the action runs it, on examples/fleet in the sandbox, with
    no environment but what the step maps (its vars filled in with the sandbox's values): exit 2."""
    import os
    import shutil
    import subprocess
    import sys

    from reconciler.sandbox.fixtures import read_env_file
    from tests.integrations.github import run_step

    work = tmp_path / "w"
    shutil.copytree(REPO / "examples" / "fleet", work / "manifests")
    sandbox = {"RECONCILER_SANDBOX_DIR": str(work / "sb")}
    reconciler = str(Path(sys.executable).parent / "reconciler")
    init = subprocess.run([reconciler, "sandbox", "init", "manifests", "--env-file", str(work / "env.sh")],
                          cwd=work, env={**os.environ, **sandbox}, capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    values = read_env_file(work / "env.sh")
    workflow = yaml.safe_load(FLEET_WORKFLOW.read_text())
    [(_, step)] = [(j, s) for j, s in _action_steps(workflow) if s["with"]["command"] == "plan"]
    env = {k: re.sub(r"\$\{\{\s*vars\.(\w+)\s*\}\}", lambda m: values[m.group(1)], v)
           for k, v in (step.get("env") or {}).items()}
    inputs = {**{k: _evaluate(v, workflow) for k, v in step["with"].items()}, "sandbox": "true"}
    inputs.pop("install", None)
    run = run_step("run", work, inputs, env={**sandbox, **env})
    assert run.code == 0 and run.outputs["exit-code"] == "2", run.both
    assert run.outputs["changes"] == "true" and run.outputs["plan-file"] == "plans/fleet.json"
    assert "is not set" not in run.both


def test_the_fleet_roles_in_the_docs_and_the_workflow_agree():
    """The fleet workflow's header and docs/ci.md print the trust policies with `reconciler
    iam-policy --config ... --trust-principal ...`: each CI role the workflow's jobs assume is
    trusted by every account's role, when the command is run (on the example fleet's reconciler.yaml)."""
    import json

    from click.testing import CliRunner

    workflow = yaml.safe_load(FLEET_WORKFLOW.read_text())
    roles = {s["with"]["role-to-assume"] for job in workflow["jobs"].values() for s in job["steps"]
             if "configure-aws-credentials" in s.get("uses", "")}
    assert len(roles) == 2  # the plan job's and the apply job's
    header = "\n".join(line.lstrip("#") for line in FLEET_WORKFLOW.read_text().splitlines() if line.startswith("#"))
    section = (REPO / "docs" / "ci.md").read_text().split("## Fleets: one role per account")[1].split("\n## ")[0]
    docs = "\n".join(re.findall(r"```sh\n(.*?)```", section, re.S))
    for where, text in (("the workflow's header", header), ("docs/ci.md", docs)):
        [args] = [a for a in reconciler_invocations(text) if a[:1] == ["iam-policy"]]
        trusted = {args[i + 1] for i, a in enumerate(args) if a == "--trust-principal"}
        assert trusted == roles, (where, trusted, roles)
        config = args.index("--config") + 1
        args[config] = str(REPO / "examples" / "fleet" / "reconciler.yaml")
        run = CliRunner().invoke(cli, args)
        assert run.exit_code == 0, (where, run.output)
        for entry in json.loads(run.stdout)["accounts"].values():
            assert set(entry["trustPolicy"]["Statement"][0]["Principal"]["AWS"]) == roles, where


def test_the_workflows_fit_together():
    plan, apply, deferred = (yaml.safe_load((REPO / "examples" / "github-actions" / n).read_text())
                             for n in ("reconciler-plan.yml", "reconciler-apply.yml", "reconciler-deferred.yml"))
    triggers = lambda w: w.get("on", w.get(True))  # noqa: E731
    assert "pull_request" in triggers(plan)
    assert triggers(apply)["push"]["branches"] == ["main"]
    assert "schedule" in triggers(deferred) and "workflow_dispatch" in triggers(deferred)
    # the apply workflow downloads what the plan workflow uploads, from that workflow
    uploads = [s["with"] for s in plan["jobs"]["plan"]["steps"] if "upload-artifact" in s.get("uses", "")]
    assert [u["name"] for u in uploads] == ["reconciler-plan"]
    # what is uploaded is the plan file the action wrote
    assert uploads[0]["path"] == "${{ steps.plan.outputs.plan-file }}"
    download = next(s["run"] for s in apply["jobs"]["plan"]["steps"] if "gh run download" in s.get("run", ""))
    assert "--workflow reconciler-plan.yml" in download and "--name reconciler-plan" in download
    # plans are saved and applied as files; destruction happens only in the protected environment
    plans = [s["with"] for _, s in _action_steps(plan) if s["with"]["command"] == "plan"]
    assert plans and plans[0]["plan-file"] == "plans/plan.json"
    applies = [s["with"] for _, s in _action_steps(apply) + _action_steps(deferred) if s["with"]["command"] == "apply"]
    assert len(applies) == 2 and all(a["plan-file"] == "plans/plan.json" for a in applies)
    assert "kms-destroy" in apply["jobs"]["apply"]["environment"]
    assert deferred["jobs"]["finish"]["environment"] == "kms-destroy"
    assert apply["concurrency"]["group"] == deferred["concurrency"]["group"]


@pytest.mark.parametrize("doc", ["README.md", "docs/ci.md", "docs/migrating-from-terraform.md"])
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
