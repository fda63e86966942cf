"""In GitHub Actions, plan appends its markdown rendering to $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

from tests.day2.helpers import Sandbox
from tests.e2e.helpers import xks_manifest


def test_plan_appends_markdown_to_the_step_summary(sb: Sandbox):
    sb.write("m/payments.yaml", xks_manifest())
    summary = sb.workdir / "summary.md"
    summary.write_text("## earlier step\n")
    run = sb.run("plan", "--sandbox", "--out", "plans/plan.json", "m", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert run.code == 2, run.both
    text = summary.read_text()
    assert text.startswith("## earlier step\n")  # appended, never overwritten
    assert "### reconciler plan: us-east-1" in text
    assert "| ➕ | `create_store` | payments-xks |" in text
    assert "create_store" in run.out
    # a second plan appends a second section
    sb.run("plan", "--sandbox", "m", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert summary.read_text().count("### reconciler plan:") == 2


def test_no_step_summary_flag_and_no_variable(sb: Sandbox):
    sb.write("m/payments.yaml", xks_manifest())
    summary = sb.workdir / "summary.md"
    run = sb.run("plan", "--sandbox", "--no-step-summary", "m", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert run.code == 2 and not summary.exists()
    run = sb.run("plan", "--sandbox", "m")  # variable unset: nothing written anywhere
    assert run.code == 2 and not summary.exists()


def test_step_summary_of_a_plan_with_no_changes_and_of_a_decommission(sb: Sandbox):
    sb.write("m/payments.yaml", xks_manifest())
    assert sb.run("apply", "--sandbox", "--auto-approve", "m").code == 0
    summary = sb.workdir / "summary.md"
    assert sb.run("plan", "--sandbox", "m", env={"GITHUB_STEP_SUMMARY": str(summary)}).code == 0
    assert "No changes. The live state matches the manifests." in summary.read_text()
    sb.write("m/payments.yaml", xks_manifest(state="absent"))
    summary.unlink()
    assert sb.run("plan", "--sandbox", "m", env={"GITHUB_STEP_SUMMARY": str(summary)}).code == 2
    text = summary.read_text()
    assert "destructive step(s)" in text and "--allow-destroy" in text
    assert "`delete_store`" in text
