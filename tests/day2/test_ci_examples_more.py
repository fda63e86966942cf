"""The GitLab CI and Atlantis examples, checked as the GitHub ones are: valid YAML of the shape
their tool expects, every `reconciler ...` they run is a command the CLI has with options it
accepts, and each step succeeds only on the exit codes that mean success (a usage error, 1, and
anything unexpected fail it; 2 is "changes" or "deferred", never an error)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.day2.helpers import REPO
from tests.day2.test_ci_examples import check_invocation, reconciler_invocations
from tests.integrations.github import fake_reconciler

GITLAB = REPO / "examples" / "gitlab-ci" / ".gitlab-ci.yml"
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
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "AWS_REGION": "us-east-1", "DIR": str(work),
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
    import json

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
