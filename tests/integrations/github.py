"""Running the action's scripts as GitHub runs a composite action's steps: bash, a runner temp
directory, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and GITHUB_EVENT_PATH, and inputs as INPUT_* variables."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
ACTION = REPO / "action.yml"
SCRIPTS = REPO / "action"


@dataclass
class StepRun:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    calls: list[list[str]]  # the argv of every `reconciler` call the fake saw

    @property
    def both(self) -> str:
        return self.stdout + self.stderr


def fake_reconciler(bin_dir: Path, code: int, stderr: str = "", plan: str = '{"steps": []}') -> None:
    """A `reconciler` that records its arguments (one line per call, NUL-separated words) and exits
    ``code``; `show --format json|markdown` prints a plan as the real one would."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "plan.json").write_text(plan)
    fake = bin_dir / "reconciler"
    fake.write_text(f"""#!/usr/bin/env bash
printf '%s\\0' "$@" >> "{bin_dir}/calls"; printf '\\n' >> "{bin_dir}/calls"
case "$1 $*" in
  "show "*"--format json"*) cat "{bin_dir}/plan.json"; exit 0;;
  "show "*"--format markdown"*) echo "## reconciler plan (fake)"; exit 0;;
  "plan "*) for a in "$@"; do if [ "$prev" = --out ]; then mkdir -p "$(dirname "$a")"; cp "{bin_dir}/plan.json" "$a"; fi; prev="$a"; done;;
esac
printf '%s' {shlex.quote(stderr)} >&2
exit {code}
""")
    fake.chmod(0o755)


def action() -> dict[str, Any]:
    return yaml.safe_load(ACTION.read_text())


def _step_env(step: dict[str, Any], inputs: dict[str, str]) -> dict[str, str]:
    """The step's env: with ${{ inputs.NAME }} replaced as the runner would (the input, else its
    default); any other expression is not expected in the action's env."""
    spec = action()["inputs"]
    unknown = set(inputs) - set(spec)
    assert not unknown, f"no such input: {unknown}"
    values = {name: inputs.get(name, str(s.get("default", ""))) for name, s in spec.items()}
    values["github-token"] = inputs.get("github-token", "fake-token")
    env = {}
    for name, value in (step.get("env") or {}).items():
        value = re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: values[m.group(1)], str(value))
        assert "${{" not in value, (name, value)
        env[name] = value
    return env


def run_step(name: str, workdir: Path, inputs: dict[str, str], *, bin_dir: Path | None = None,
             env: dict[str, str] | None = None, event: str | None = None) -> StepRun:
    """Run the action's step ``name`` (its ``id``, or the start of its name) as GitHub runs a
    composite action's step with ``shell: bash``: ``bash --noprofile --norc -eo pipefail`` on its
    ``run:``, with its ``env:`` (inputs substituted) and the runner's variables."""
    step = next(s for s in action()["runs"]["steps"] if s.get("id") == name or s.get("name", "").startswith(name))
    assert step["shell"] == "bash"
    workdir.mkdir(parents=True, exist_ok=True)
    runner_temp = workdir / "_runner_temp"
    runner_temp.mkdir(exist_ok=True)
    output, summary = workdir / "_github_output", workdir / "_step_summary"
    output.write_text("")
    summary.write_text("")
    path = [str(bin_dir)] if bin_dir else []
    path += [os.path.dirname(sys.executable), "/usr/bin", "/bin"]
    full_env = {"PATH": os.pathsep.join(path), "HOME": str(workdir), "RUNNER_TEMP": str(runner_temp),
                "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
                "GITHUB_ACTION_PATH": str(REPO), "GITHUB_REPOSITORY": "octo/infra", "GITHUB_WORKFLOW": "reconciler plan",
                "GITHUB_JOB": "plan", "GITHUB_RUN_ID": "4242", "GITHUB_SHA": "0123abc", "NO_COLOR": "1",
                **_step_env(step, inputs), **(env or {})}
    if event is not None:
        (workdir / "_event.json").write_text(event)
        full_env["GITHUB_EVENT_PATH"] = str(workdir / "_event.json")
    run = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                         env=full_env, cwd=workdir, capture_output=True, text=True, timeout=120)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    calls = []
    if bin_dir and (bin_dir / "calls").exists():
        calls = [line.split("\0")[:-1] for line in (bin_dir / "calls").read_text().split("\n") if line]
    return StepRun(run.returncode, run.stdout, run.stderr, outputs, summary.read_text(), calls)
