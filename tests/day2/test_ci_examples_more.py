"""The GitLab CI and Atlantis examples, checked as the GitHub ones are: valid YAML of the shape
their tool expects, every `reconciler ...` they run is a command the CLI has with options it
accepts, and each step succeeds only on the exit codes that mean success (a usage error, 1, and
anything unexpected fail it; 2 is "changes" or "deferred", never an error)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.day2.helpers import REPO
from tests.day2.test_ci_examples import check_invocation, reconciler_invocations
from tests.integrations.github import fake_reconciler

GITLAB = REPO / "examples" / "gitlab-ci" / ".gitlab-ci.yml"
# the python3 the jobs run, with reconciler installed (python3 -m reconciler.plan.scheduled)
PYTHON_BIN = os.path.dirname(sys.executable)
ATLANTIS = REPO / "examples" / "atlantis" / "atlantis.yaml"


class _GitLabLoader(yaml.SafeLoader):
    pass


_GitLabLoader.add_constructor("!reference", lambda loader, node: {"reference": loader.construct_sequence(node)})


def gitlab() -> dict:
    return yaml.load(GITLAB.read_text(), Loader=_GitLabLoader)  # noqa: S506 - a SafeLoader subclass


def atlantis() -> dict:
    return yaml.safe_load(ATLANTIS.read_text())


def _gitlab_scripts() -> dict[str, str]:
    jobs = {k: v for k, v in gitlab().items() if isinstance(v, dict) and "script" in v}
    return {name: "\n".join(job["script"]) for name, job in jobs.items()}


def _atlantis_scripts() -> dict[str, str]:
    out = {}
    for name, workflow in atlantis()["workflows"].items():
        for stage in ("plan", "apply"):
            for n, step in enumerate(workflow[stage]["steps"]):
                if isinstance(step, dict) and "run" in step:
                    out[f"{name}/{stage}/{n}"] = step["run"]
    return out


def test_gitlab_ci_has_the_jobs_and_stages_it_needs():
    data = gitlab()
    assert data["stages"] == ["validate", "plan", "apply"]
    jobs = {k: v for k, v in data.items() if isinstance(v, dict) and "stage" in v}
    assert set(jobs) == {"validate", "plan", "apply", "deferred"}
    for name, job in jobs.items():
        assert job["stage"] in data["stages"], name
        for need in job.get("needs", []):
            assert need in jobs
    assert jobs["apply"]["rules"][0]["when"] == "manual" and jobs["apply"]["needs"] == ["plan"]
    assert "plans/plan.json" in jobs["plan"]["artifacts"]["paths"]
    assert jobs["apply"]["resource_group"] == jobs["deferred"]["resource_group"]
    assert jobs["deferred"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]


def test_atlantis_config_is_a_version_3_repo_config_with_a_custom_workflow():
    data = atlantis()
    assert data["version"] == 3
    project = data["projects"][0]
    assert project["dir"] == "manifests" and project["workflow"] in data["workflows"]
    steps = data["workflows"][project["workflow"]]
    assert set(steps) == {"plan", "apply"}
    assert all(set(step) == {"run"} for stage in steps.values() for step in stage["steps"])


@pytest.mark.parametrize("scripts", [_gitlab_scripts, _atlantis_scripts], ids=["gitlab", "atlantis"])
def test_the_examples_run_only_commands_and_options_the_cli_has(scripts, monkeypatch):
    monkeypatch.chdir(REPO)
    calls = [args for script in scripts().values() for args in reconciler_invocations(script)]
    assert {args[0] for args in calls} >= {"validate", "plan", "apply"}
    for args in calls:
        check_invocation(args)


STEPS = [  # (tool, step, shell, exit codes of reconciler the step treats as success)
    ("gitlab", "validate", "bash", {0}),
    ("gitlab", "plan", "bash", {0, 2}),
    ("gitlab", "apply", "bash", {0, 2}),
    ("gitlab", "deferred", "bash", {0, 2}),
    ("atlantis", "reconciler/plan/0", "sh", {0}),
    ("atlantis", "reconciler/plan/1", "sh", {0, 2}),
    ("atlantis", "reconciler/apply/0", "sh", {0, 2}),
]


@pytest.mark.parametrize("tool,step,shell,success", STEPS, ids=[f"{t}-{s}" for t, s, *_ in STEPS])
@pytest.mark.parametrize("code", [0, 1, 2, 127])
def test_a_step_succeeds_only_on_the_exit_codes_that_mean_success(tmp_path: Path, tool, step, shell, success, code):
    """GitLab runs a job's script with bash -eo pipefail (its shell executor, for an image with
    bash); Atlantis runs a custom step with sh -c, with $DIR and $PLANFILE set."""
    script = (_gitlab_scripts() if tool == "gitlab" else _atlantis_scripts())[step]
    bin_dir = tmp_path / "bin"
    fake_reconciler(bin_dir, code)
    work = tmp_path / "work"
    (work / "plans").mkdir(parents=True)
    (work / "plans" / "plan-view.json").write_text('{"steps": []}')
    (work / "reconciler-plan.json").write_text("{}")
    env = {"PATH": f"{bin_dir}:{PYTHON_BIN}:/usr/bin:/bin", "AWS_REGION": "us-east-1", "DIR": str(work),
           "PLANFILE": str(work / "default.tfplan"), "HOME": str(tmp_path)}
    argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script] if shell == "bash" else ["sh", "-c", script]
    run = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, timeout=60)
    assert (run.returncode == 0) == (code in success), (code, run.stdout, run.stderr)


def _single(destructive: bool) -> dict:
    return {"steps": [{"id": "s:create_store", "action": "create_store", "destructive": False, "deferredUntil": None},
                      *([{"id": "old:delete_store", "action": "delete_store", "destructive": True,
                          "deferredUntil": None}] if destructive else [])]}


def _fleet(destructive: bool) -> dict:
    """A fleet plan (reconciler/plan/fleet_model.py): the steps are in each target's plan."""
    return {"kind": "fleet", "targets": [
        {"id": "111111111111/us-east-1", "account": "111111111111", "region": "us-east-1", "plan": _single(False)},
        {"id": "222222222222/eu-west-1", "account": "222222222222", "region": "eu-west-1", "plan": _single(destructive)},
    ]}


@pytest.mark.parametrize("plan,allow", [(_single(False), False), (_single(True), True),
                                        (_fleet(False), False), (_fleet(True), True)],
                         ids=["one-target", "one-target-destructive", "fleet", "fleet-destructive"])
def test_gitlab_apply_passes_allow_destroy_exactly_when_a_target_has_a_destructive_step(tmp_path: Path, plan, allow):
    bin_dir = tmp_path / "bin"
    fake_reconciler(bin_dir, 0)
    work = tmp_path / "work"
    (work / "plans").mkdir(parents=True)
    (work / "plans" / "plan-view.json").write_text(json.dumps(plan))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "AWS_REGION": "us-east-1", "HOME": str(tmp_path)}
    run = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", _gitlab_scripts()["apply"]],
                         env=env, cwd=work, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    calls = [line.split("\0")[:-1] for line in (bin_dir / "calls").read_text().split("\n") if line]
    assert [c[:2] for c in calls] == [["apply", "plans/plan.json"]]
    assert ("--allow-destroy" in calls[0]) is allow, calls


# -- the scheduled deferred job (GitHub's reconciler-deferred.yml, GitLab's deferred) ------------------

GITHUB_DEFERRED = REPO / "examples" / "github-actions" / "reconciler-deferred.yml"


def _github_check_step() -> str:
    steps = yaml.safe_load(GITHUB_DEFERRED.read_text())["jobs"]["check"]["steps"]
    return next(s["run"] for s in steps if s.get("id") == "check")


def deferred_jobs(tmp_path: Path, plan: str) -> tuple[subprocess.CompletedProcess, dict, subprocess.CompletedProcess,
                                                       list[list[str]]]:
    """Run GitHub's check step on ``plan`` (as the plan step saved it; its output `due`) and GitLab's
    deferred job, whose `reconciler plan` (a fake, exit 2) writes ``plan``: what each decided, and the
    reconciler calls GitLab's job made."""
    github = tmp_path / "github"
    (github / "plans").mkdir(parents=True)
    (github / "plans" / "plan.json").write_text(plan)
    output = github / "_github_output"
    output.write_text("")
    env = {"PATH": f"{PYTHON_BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "CHANGES": "true",
           "GITHUB_OUTPUT": str(output), "GITHUB_ACTIONS": "true"}
    gh = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", _github_check_step()],
                        env=env, cwd=github, capture_output=True, text=True, timeout=60)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)

    bin_dir, gitlab_dir = tmp_path / "bin", tmp_path / "gitlab"
    fake_reconciler(bin_dir, 2, plan=plan)
    gitlab_dir.mkdir()
    env = {"PATH": f"{bin_dir}:{PYTHON_BIN}:/usr/bin:/bin", "AWS_REGION": "us-east-1", "HOME": str(tmp_path)}
    gl = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", _gitlab_scripts()["deferred"]],
                        env=env, cwd=gitlab_dir, capture_output=True, text=True, timeout=60)
    calls = [line.split("\0")[:-1] for line in (bin_dir / "calls").read_text().split("\n") if line]
    return gh, outputs, gl, calls


def _decommission(sb, quarantine: int) -> None:
    from tests.e2e.helpers import xks_manifest

    present = xks_manifest()
    assert "\n    pendingWindowDays: 7\n" in present
    sb.write("m/payments.yaml", present)
    assert sb.run("apply", "--sandbox", "--auto-approve", "m").code == 0
    absent = xks_manifest(state="absent")
    if quarantine:
        absent = absent.replace("pendingWindowDays: 7\n", f"pendingWindowDays: 7\n    quarantineDays: {quarantine}\n")
    sb.write("m/payments.yaml", absent)


def _plan(sb, name: str) -> str:
    run = sb.run("plan", "--sandbox", "m", "--out", f"plans/{name}.json")
    assert run.code == 2, run.both
    return (sb.workdir / "plans" / f"{name}.json").read_text()


def _check(tmp_path: Path, name: str, plan: str, due: bool | None) -> None:
    """Both jobs decide the same: ``due`` True/False, or None for a refusal (the job fails, nothing
    is applied)."""
    gh, outputs, gl, calls = deferred_jobs(tmp_path / name, plan)
    applies = [c for c in calls if c[:1] == ["apply"]]
    if due is None:
        assert gh.returncode == 1 and "due" not in outputs, (name, gh.stdout, gh.stderr)
        assert gh.stderr.startswith("::error::Error: the plan has changes that a scheduled run does not apply: ")
        assert len(gh.stderr.strip().splitlines()) == 1 and "Traceback" not in gh.stderr + gl.stderr
        assert gl.returncode == 1 and not applies, (name, gl.stdout, gl.stderr)
        assert "Error: the plan has changes that a scheduled run does not apply" in gl.stderr
        return
    assert gh.returncode == 0 and outputs == {"due": "true" if due else "false"}, (name, gh.stderr)
    assert gl.returncode == 0, (name, gl.stdout, gl.stderr)
    assert applies == ([["apply", "plans/plan.json", "--allow-destroy", "--journal", "plans/journal.jsonl"]]
                       if due else []), name


def test_the_deferred_jobs_finish_a_quarantine_decommission_at_each_stage(sb, tmp_path: Path):
    """With `state: absent` and `deletion: {quarantineDays: 14}`, real plans at each stage: the plan
    before the first (reviewed) apply starts the decommission, which a scheduled run refuses; after
    it, the keys' schedule_key_deletion steps are deferred (nothing due: the jobs succeed without
    applying; they used to fail every day); after the quarantine, they are due and applied; then the
    store's deletion waits for the keys' window, and is due after it."""
    _decommission(sb, quarantine=14)
    starting = _plan(sb, "starting")
    _check(tmp_path, "starting", starting, None)
    assert sb.run("apply", "--sandbox", "plans/starting.json", "--allow-destroy").code == 2

    in_quarantine = _plan(sb, "in-quarantine")
    steps = json.loads(in_quarantine)["steps"]
    assert {s["action"] for s in steps} == {"schedule_key_deletion", "delete_store"}
    assert all(s["deferredUntil"] for s in steps)
    _check(tmp_path, "in-quarantine", in_quarantine, False)

    assert sb.run("sandbox", "advance", "15d").code == 0
    after = _plan(sb, "after-quarantine")
    keys = [s for s in json.loads(after)["steps"] if s["action"] == "schedule_key_deletion"]
    assert len(keys) == 2 and all(s["deferredUntil"] is None and s["params"]["quarantine"]["started"] for s in keys)
    _check(tmp_path, "after-quarantine", after, True)
    assert sb.run("apply", "--sandbox", "plans/after-quarantine.json", "--allow-destroy").code == 2

    waiting = _plan(sb, "waiting")
    assert [s["action"] for s in json.loads(waiting)["steps"]] == ["delete_store"]
    _check(tmp_path, "waiting", waiting, False)

    assert sb.run("sandbox", "advance", "8d").code == 0
    store_due = _plan(sb, "store-due")
    _check(tmp_path, "store-due", store_due, True)
    assert sb.run("apply", "--sandbox", "plans/store-due.json", "--allow-destroy").code == 0

    # a fleet plan holding these plans is read target by target
    fleet = {"kind": "fleet", "targets": [
        {"id": f"111111111111/{r}", "account": "111111111111", "region": r, "plan": json.loads(p)}
        for r, p in (("us-east-1", in_quarantine), ("eu-west-1", waiting))]}
    _check(tmp_path, "fleet-waiting", json.dumps(fleet), False)
    fleet["targets"][1]["plan"] = json.loads(after)
    _check(tmp_path, "fleet-due", json.dumps(fleet), True)
    fleet["targets"][0]["plan"] = json.loads(starting)
    _check(tmp_path, "fleet-starting", json.dumps(fleet), None)


def test_a_scheduled_run_refuses_key_deletions_outside_a_quarantine_that_began(sb, tmp_path: Path):
    """Without a quarantine, the keys' deletion is scheduled by the plan that starts the
    decommission: a scheduled run never applies it; nor any other change."""
    _decommission(sb, quarantine=0)
    plan = _plan(sb, "decommission")
    assert "schedule_key_deletion" in {s["action"] for s in json.loads(plan)["steps"]}
    _check(tmp_path, "decommission", plan, None)

    from tests.e2e.helpers import xks_manifest

    sb.write("m/payments.yaml", xks_manifest(endpoint="https://xks-2.example.com"))
    _check(tmp_path, "update", _plan(sb, "update"), None)


@pytest.mark.parametrize("args,stdin,message", [
    ([], "", "Error: usage: python3 -m reconciler.plan.scheduled PLANFILE"),
    (["plans/none.json"], "", "Error: cannot read the plan plans/none.json (No such file or directory)"),
    (["-"], "{not json", "Error: - is not JSON: pass the plan file 'reconciler plan --out' wrote"),
    (["-"], "[]", "Error: not a reconciler plan"),
    (["-"], json.dumps({"kind": "fleet", "targets": [{"id": "111111111111/us-east-1", "error": "AccessDenied"}]}),
     "Error: target(s) that could not be planned: 111111111111/us-east-1"),
])
def test_the_scheduled_check_fails_with_one_line_naming_the_fix(tmp_path: Path, args, stdin, message):
    run = subprocess.run([sys.executable, "-m", "reconciler.plan.scheduled", *args], input=stdin, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, env={**os.environ, "GITHUB_ACTIONS": ""})
    assert run.returncode == 1 and run.stdout == "", run.stdout
    assert run.stderr.startswith(message) and len(run.stderr.splitlines()) == 1, run.stderr
