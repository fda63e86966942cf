"""The reusable GitHub Action (action.yml): actionlint passes on it and on every workflow; its steps,
run as GitHub runs them with a fake GitHub environment, record the right outputs, put the plan in
the job summary and in one pull-request comment that is updated, never duplicated, and succeed
only on the exit codes the README gives as success (a usage error never looks like success)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integrations.github import REPO, SCRIPTS, fake_reconciler, run_step

BIN = Path(sys.executable).parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml")) + sorted(
    (REPO / "examples" / "github-actions").glob("*.yml")) + sorted((REPO / "examples" / "github-actions-fleet").glob("*.yml"))
PLAN_WITH_CHANGES = json.dumps({"steps": [
    {"id": "payments-xks/create_store", "action": "create_store", "destructive": False, "deferredUntil": None},
    {"id": "legacy/delete_store", "action": "delete_store", "destructive": True, "deferredUntil": "2030-01-08T00:00:00Z"},
]})

# a fleet plan (reconciler/plan/fleet_model.py): no top-level steps, a plan per target
FLEET_PLAN_WITH_CHANGES = json.dumps({"kind": "fleet", "targets": [
    {"id": "111111111111/us-east-1", "account": "111111111111", "region": "us-east-1", "plan": {"steps": []}},
    {"id": "222222222222/eu-west-1", "account": "222222222222", "region": "eu-west-1", "error": "AccessDenied"},
    {"id": "222222222222/us-east-1", "account": "222222222222", "region": "us-east-1",
     "plan": json.loads(PLAN_WITH_CHANGES)},
]})


def _tool(name: str) -> str:
    path = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert path, f"{name} is not installed: pip install -e '.[test]'"
    return path


# -- linting --------------------------------------------------------------------------------------

def test_actionlint_passes_on_the_action_and_every_workflow():
    """actionlint reads the action's metadata through the workflow that uses it as `./`, and runs
    shellcheck on every `run:` script (shellcheck must be there, or that check would be skipped)."""
    assert WORKFLOWS and any(p.parent.name == "workflows" for p in WORKFLOWS)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    assert subprocess.run([_tool("shellcheck"), "--version"], capture_output=True).returncode == 0
    run = subprocess.run([_tool("actionlint"), "-no-color", *map(str, WORKFLOWS)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_actionlint_catches_a_wrong_input_of_the_action(tmp_path: Path):
    """The check above is not vacuous: a misspelt input of the local action fails it."""
    scratch = tmp_path / "repo"
    shutil.copytree(REPO / ".github", scratch / ".github")
    shutil.copy(REPO / "action.yml", scratch / "action.yml")
    workflow = scratch / ".github" / "workflows" / "action.yml"
    workflow.write_text(workflow.read_text().replace("command: validate", "comand: validate", 1))
    subprocess.run(["git", "init", "-q", str(scratch)], check=True)  # actionlint finds the project by its .git
    run = subprocess.run([_tool("actionlint"), "-no-color"], cwd=scratch, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and 'input "comand" is not defined' in run.stdout


def test_shellcheck_passes_on_the_action_scripts():
    scripts = sorted(SCRIPTS.glob("*.sh"))
    assert [p.name for p in scripts] == ["comment.sh", "install.sh", "run.sh"]
    run = subprocess.run([_tool("shellcheck"), *map(str, scripts)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout


# -- the run step: exit codes and outputs -------------------------------------------------------------

@pytest.mark.parametrize("command,code,success", [
    ("plan", 0, True), ("plan", 2, True), ("plan", 1, False), ("plan", 3, False), ("plan", 127, False),
    ("apply", 0, True), ("apply", 2, True), ("apply", 1, False),
    ("validate", 0, True), ("validate", 1, False), ("validate", 2, False),
    ("status", 0, True), ("status", 2, False),
])
def test_the_step_succeeds_only_on_the_exit_codes_that_mean_success(tmp_path, command, code, success):
    fake_reconciler(tmp_path / "bin", code, stderr="Error: something (see 'reconciler plan --help')\n" if code == 1 else "")
    run = run_step("run", tmp_path / "w", {"command": command}, bin_dir=tmp_path / "bin")
    assert (run.code == 0) is success, (run.code, run.both)
    assert run.outputs["exit-code"] == str(code)
    if not success:
        assert f"::error::reconciler {command} exited {code}" in run.stdout and "::notice::" not in run.stdout
        assert f"exit {code}" in run.summary


def test_a_usage_error_fails_the_step_and_says_so_in_the_summary(tmp_path):
    fake_reconciler(tmp_path / "bin", 1, stderr="Error: No such option: --no-such-flag (see 'reconciler plan --help')\n")
    run = run_step("run", tmp_path / "w", {"command": "plan", "args": "--no-such-flag"}, bin_dir=tmp_path / "bin")
    assert run.code == 1 and run.outputs["exit-code"] == "1" and run.outputs["changes"] == "false"
    assert "No such option: --no-such-flag" in run.summary
    assert "plan-file" not in run.outputs


def test_reconciler_missing_fails_with_127(tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    run = run_step("run", tmp_path / "w", {"command": "plan"}, bin_dir=empty,
                   env={"PATH": f"{empty}:/usr/bin:/bin"})
    assert run.code == 127 and run.outputs["exit-code"] == "127" and "not installed" in run.summary


def test_plan_outputs_the_plan_file_and_its_flags(tmp_path):
    fake_reconciler(tmp_path / "bin", 2, plan=PLAN_WITH_CHANGES)
    run = run_step("run", tmp_path / "w", {"command": "plan", "paths": "manifests extra/one.yaml", "region": "eu-west-1",
                                           "plan-file": "out/p.json"}, bin_dir=tmp_path / "bin")
    assert run.code == 0 and "::notice::reconciler plan exited 2: changes to review" in run.stdout
    assert run.outputs == {"exit-code": "2", "plan-file": "out/p.json", "changes": "true", "deferred": "true",
                           "destructive": "true"}
    assert run.calls[0] == ["plan", "manifests", "extra/one.yaml", "--region", "eu-west-1", "--out", "out/p.json",
                            "--no-step-summary"]
    assert "## reconciler plan (fake)" in run.summary


@pytest.mark.parametrize("command", ["plan", "show"])
def test_a_fleet_plan_sets_the_flags_from_its_targets_plans(tmp_path, command):
    """A fleet plan has its steps under targets[].plan.steps: the flags come from there (they were
    always false, and reconciler-apply.yml skipped the apply of a fleet with changes)."""
    fake_reconciler(tmp_path / "bin", 2 if command == "plan" else 0, plan=FLEET_PLAN_WITH_CHANGES)
    if command == "show":
        (tmp_path / "w" / "plans").mkdir(parents=True)
        (tmp_path / "w" / "plans" / "plan.json").write_text(FLEET_PLAN_WITH_CHANGES)
    run = run_step("run", tmp_path / "w", {"command": command}, bin_dir=tmp_path / "bin")
    assert run.code == 0, run.both
    assert {k: run.outputs[k] for k in ("changes", "deferred", "destructive")} == \
        {"changes": "true", "deferred": "true", "destructive": "true"}
    converged = json.dumps({"kind": "fleet", "targets": [
        {"id": "111111111111/us-east-1", "account": "111111111111", "region": "us-east-1", "plan": {"steps": []}}]})
    fake_reconciler(tmp_path / "bin2", 0, plan=converged)
    run = run_step("run", tmp_path / "w2", {"command": "plan"}, bin_dir=tmp_path / "bin2")
    assert {k: run.outputs[k] for k in ("changes", "deferred", "destructive")} == \
        {"changes": "false", "deferred": "false", "destructive": "false"}


def test_fail_on_changes_makes_exit_2_fail(tmp_path):
    fake_reconciler(tmp_path / "bin", 2)
    run = run_step("run", tmp_path / "w", {"command": "plan", "fail-on-changes": "true"}, bin_dir=tmp_path / "bin")
    assert run.code == 2 and "fail-on-changes is true" in run.stdout


def test_apply_of_a_plan_file_and_of_paths(tmp_path):
    fake_reconciler(tmp_path / "bin", 2)
    run = run_step("run", tmp_path / "w", {"command": "apply", "plan-file": "plans/plan.json", "sandbox": "true",
                                           "args": "--allow-destroy"}, bin_dir=tmp_path / "bin")
    assert run.code == 0 and run.outputs["deferred"] == "true"
    assert run.calls == [["apply", "plans/plan.json", "--sandbox", "--allow-destroy"]]
    run = run_step("run", tmp_path / "w2", {"command": "apply", "plan-file": ""}, bin_dir=tmp_path / "bin2") \
        if fake_reconciler(tmp_path / "bin2", 0) is None else None
    assert run.code == 0 and run.calls == [["apply", "manifests", "--auto-approve"]]


def test_args_are_split_as_a_shell_would_and_never_run(tmp_path):
    fake_reconciler(tmp_path / "bin", 0)
    run = run_step("run", tmp_path / "w", {"command": "validate", "paths": "'my manifests' other",
                                           "args": "--check-secrets $(touch pwned) `touch pwned2`"},
                   bin_dir=tmp_path / "bin")
    assert run.calls[0] == ["validate", "my manifests", "other", "--check-secrets", "$(touch", "pwned)",
                            "`touch", "pwned2`"]
    assert not list((tmp_path / "w").glob("pwned*"))


def test_an_unknown_command_input_fails(tmp_path):
    fake_reconciler(tmp_path / "bin", 0)
    run = run_step("run", tmp_path / "w", {"command": "destroy"}, bin_dir=tmp_path / "bin")
    assert run.code == 1 and run.outputs["exit-code"] == "1" and not run.calls


def test_the_action_plans_for_real_against_the_sandbox(tmp_path):
    """The real reconciler: plan the repository's example manifests in the embedded sandbox."""
    work = tmp_path / "w"
    shutil.copytree(REPO / "manifests", work / "manifests")
    env = {"RECONCILER_SANDBOX_DIR": str(work / "sb")}
    init = subprocess.run([_tool("reconciler"), "sandbox", "init", "manifests", "--env-file", str(work / "env.sh")],
                          cwd=work, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    from reconciler.sandbox.fixtures import read_env_file

    env.update(read_env_file(work / "env.sh"))
    run = run_step("run", work, {"command": "plan", "sandbox": "true"}, env=env)
    assert run.code == 0, run.both
    assert run.outputs["exit-code"] == "2" and run.outputs["changes"] == "true"
    assert run.outputs["plan-file"] == "plans/plan.json" and (work / "plans" / "plan.json").is_file()
    assert "create_store" in run.summary and "payments-xks" in run.summary
    for secret in (v for k, v in env.items() if "SECRET" in k or "PASSWORD" in k):
        assert secret not in run.both + run.summary


def test_the_action_plans_and_shows_a_fleet_for_real_against_the_sandbox(tmp_path):
    """The real reconciler on examples/fleet (two accounts, two regions): plan and show set the
    flags from the targets' steps, so reconciler-apply.yml's `changes == 'true'` runs the apply."""
    work = tmp_path / "w"
    shutil.copytree(REPO / "examples" / "fleet", work / "fleet")
    env = {"RECONCILER_SANDBOX_DIR": str(work / "sb")}
    init = subprocess.run([_tool("reconciler"), "sandbox", "init", "fleet", "--env-file", str(work / "env.sh")],
                          cwd=work, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    from reconciler.sandbox.fixtures import read_env_file

    env.update(read_env_file(work / "env.sh"))
    run = run_step("run", work, {"command": "plan", "paths": "fleet", "sandbox": "true"}, env=env)
    assert run.code == 0 and run.outputs["exit-code"] == "2", run.both
    assert json.loads((work / "plans" / "plan.json").read_text())["kind"] == "fleet"
    assert run.outputs["changes"] == "true"
    assert run.outputs["deferred"] == "false" and run.outputs["destructive"] == "false"  # creates only
    shown = run_step("run", work, {"command": "show"}, env=env)
    assert shown.code == 0 and shown.outputs["changes"] == "true", shown.both


# -- the pull-request comment ---------------------------------------------------------------------

def _fake_gh(bin_dir: Path, existing: str = "") -> None:
    """A `gh` that logs its arguments and answers the comment listing with ``existing`` ids."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    gh = bin_dir / "gh"
    gh.write_text(f"""#!/usr/bin/env bash
echo "$*" >> "{bin_dir}/gh.log"
for a in "$@"; do case "$a" in body=@*) cp "${{a#body=@}}" "{bin_dir}/body.md";; esac; done
case "$*" in *"--paginate"*) printf '%s' "{existing}"; [ -n "{existing}" ] && echo;; esac
exit 0
""")
    gh.chmod(0o755)


PR_EVENT = json.dumps({"pull_request": {"number": 17}})


def _with_result(workdir: Path, text: str) -> None:
    (workdir / "_runner_temp" / "reconciler-action").mkdir(parents=True, exist_ok=True)
    (workdir / "_runner_temp" / "reconciler-action" / "comment.md").write_text(text)


def test_the_first_push_posts_one_comment_and_later_pushes_update_it(tmp_path):
    bin_dir = tmp_path / "bin"
    _fake_gh(bin_dir)
    _with_result(tmp_path / "w", "## the plan\n")
    run = run_step("Comment", tmp_path / "w", {}, bin_dir=bin_dir, event=PR_EVENT)
    assert run.code == 0 and "Commented on pull request #17" in run.stdout
    log = (bin_dir / "gh.log").read_text().splitlines()
    assert log[0].startswith("api --paginate repos/octo/infra/issues/17/comments")
    assert log[1].startswith("api -X POST repos/octo/infra/issues/17/comments")
    body = (bin_dir / "body.md").read_text()
    assert body.startswith("<!-- reconciler-action: reconciler plan/plan -->\n") and "## the plan" in body

    _fake_gh(bin_dir, existing="987654")  # the comment the first push made is found by its marker
    (bin_dir / "gh.log").unlink()
    run = run_step("Comment", tmp_path / "w", {}, bin_dir=bin_dir, event=PR_EVENT)
    log = (bin_dir / "gh.log").read_text().splitlines()
    assert len(log) == 2 and log[1].startswith("api -X PATCH repos/octo/infra/issues/comments/987654")
    assert "Updated comment 987654" in run.stdout


def test_no_comment_outside_a_pull_request_and_a_long_plan_is_cut(tmp_path):
    bin_dir = tmp_path / "bin"
    _fake_gh(bin_dir)
    _with_result(tmp_path / "w", "x" * 70000)
    run = run_step("Comment", tmp_path / "w", {}, bin_dir=bin_dir, event=json.dumps({"push": {}}))
    assert run.code == 0 and not (bin_dir / "gh.log").exists()
    run = run_step("Comment", tmp_path / "w", {"comment-key": "prod --> x"}, bin_dir=bin_dir, event=PR_EVENT)
    body = (bin_dir / "body.md").read_text()
    assert len(body) < 65536 and "longer than a comment can be" in body
    assert body.startswith("<!-- reconciler-action: prod - -> x -->")  # the key cannot end the marker early
