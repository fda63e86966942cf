"""Interruption: ``apply`` is killed with SIGKILL at every step boundary of a plan in turn, and once
while it waits for a connection. Each time a new ``apply`` converges, nothing exists twice, and
the journal shows what the killed run did (and the next run says it found it unfinished).

Three plans, each from its own starting state: create (create_store, connect_store, two
create_key, two create_alias), an update that needs a disconnect (disconnect_store, update_store,
connect_store) and a decommission (two schedule_key_deletion, disconnect_store, a deferred
delete_store). Boundary N is "right after the N-th step ended" (0: right after run-start).

Each command is a new process (forked from a preloaded server, see ``forked.py``); the killed one
stops itself at the boundary with SIGSTOP and the test sends the SIGKILL, so the boundary is
exact and the kill is a real one: no finally block, no flush, no lock release by the process.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from reconciler.apply.journal import read_journal
from tests.e2e.helpers import xks_manifest
from tests.reliability.checks import check_no_duplicates
from tests.reliability.forked import ForkedCli

pytestmark = pytest.mark.e2e

NEW_ENDPOINT = "https://xks-new.example.com"
SCENARIOS = {
    # name: (starting state, manifest, steps in the plan, apply flags, exit code of the converging apply)
    "create": (None, xks_manifest(), 6, [], 0),
    "update": ("created", xks_manifest(endpoint=NEW_ENDPOINT), 3, [], 0),
    "decommission": ("created", xks_manifest(state="absent"), 4, ["--allow-destroy"], 2),
}
KILL_POINTS = [(name, ("end", n)) for name, (_, _, steps, _, _) in SCENARIOS.items() for n in range(steps + 1)]
KILL_POINTS.append(("create", ("wait", 1)))  # while connect_store polls a CONNECTING store


@pytest.fixture(scope="module")
def created(tmp_path_factory) -> Path:
    """A sandbox directory after the create plan was applied (copied for each kill point)."""
    base = tmp_path_factory.mktemp("created")
    cli = ForkedCli(base)
    cli.write("m/payments.yaml", xks_manifest())
    run = cli("apply", "--sandbox", "--auto-approve", "m")
    assert run.code == 0, run.both
    return cli.sandbox_dir


def live(cli) -> tuple[list[dict], list[dict]]:
    with cli.kms() as kms:
        stores = kms.describe_custom_key_stores()["CustomKeyStores"]
        metas = [kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"] for k in kms.list_keys()["Keys"]]
    return stores, [m for m in metas if m.get("CustomKeyStoreId")]


def plan_after(cli, monkeypatch) -> list[dict]:
    """The plan a new run would make now (in this process, on the same sandbox directory)."""
    from reconciler.aws.connection import Target
    from reconciler.plan.make import make_plan

    monkeypatch.chdir(cli.workdir)
    for name in ("XKS_ACCESS_KEY_ID", "XKS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, cli.env[name])
    result = make_plan(["m"], Target(sandbox=True, sandbox_dir=str(cli.sandbox_dir)))
    return [s.to_dict() for s in result.plan.steps]


@pytest.mark.parametrize("scenario,stop_at", KILL_POINTS,
                         ids=[f"{name}-{kind}{n}" for name, (kind, n) in KILL_POINTS])
def test_apply_killed_at_a_boundary_is_finished_by_the_next_apply(tmp_path, created, monkeypatch, scenario,
                                                                   stop_at):
    start, manifest, steps, flags, converged_code = SCENARIOS[scenario]
    cli = ForkedCli(tmp_path)
    if start == "created":
        shutil.copytree(created, cli.sandbox_dir)
        _, before = live(cli)
    cli.write("m/payments.yaml", manifest)

    # the run that is killed
    child = cli.start("apply", "--sandbox", "--auto-approve", "--format", "json", *flags, "m", stop_at=stop_at)
    assert child.wait_stopped(), child.result().both
    assert child.kill() == -9
    journal = read_journal(tmp_path / "plans/journal.jsonl")
    run_id = next(e["run"] for e in journal if e["event"] == "run-start")
    killed = [e for e in journal if e["run"] == run_id]
    assert killed[0]["steps"] == steps
    assert not any(e["event"] == "run-end" for e in killed)
    ended = [e for e in killed if e["event"] in ("ok", "failed", "skipped", "deferred")]
    assert all(e["event"] in ("ok", "deferred") for e in ended), ended
    kind, n = stop_at
    if kind == "end":
        assert len(ended) == n  # the journal says exactly how far it got
    else:
        assert [e["step"] for e in killed if e["event"] == "start"][-1] == "payments-xks:connect_store"
        assert "payments-xks:connect_store" not in [e["step"] for e in ended]
    # what the journal says it did is done
    stores, keys = live(cli)
    done = {e["action"] for e in ended if e["event"] == "ok"}
    if "create_store" in done:
        assert [s["CustomKeyStoreName"] for s in stores] == ["payments-xks"]
    if "create_key" in done:
        assert keys

    # a new apply finishes the job, and says it found the last run unfinished
    run = cli("apply", "--sandbox", "--auto-approve", "--format", "json", *flags, "m")
    assert run.code == converged_code, run.both
    assert f"run {run_id}" in run.err and "did not finish" in run.err
    events = [json.loads(line) for line in run.out.splitlines()]
    assert not [e for e in events if e["event"] in ("failed", "skipped")], events
    left = [s for s in plan_after(cli, monkeypatch) if not s["deferredUntil"]]
    assert left == [], left

    stores, keys = live(cli)
    check_no_duplicates(stores, keys)
    assert [s["CustomKeyStoreName"] for s in stores] == ["payments-xks"]
    assert sorted(k["XksKeyConfiguration"]["Id"] for k in keys) == ["ext-key-0001", "ext-key-0002"]
    store = stores[0]
    if scenario == "create":
        assert store["ConnectionState"] == "CONNECTED"
        assert all(k["KeyState"] == "Enabled" for k in keys)
    elif scenario == "update":
        assert store["ConnectionState"] == "CONNECTED"
        assert store["XksProxyConfiguration"]["UriEndpoint"] == NEW_ENDPOINT
        assert {k["KeyId"] for k in keys} == {k["KeyId"] for k in before}
    else:
        assert store["ConnectionState"] == "DISCONNECTED"
        assert all(k["KeyState"] == "PendingDeletion" for k in keys)
        assert {k["KeyId"] for k in keys} == {k["KeyId"] for k in before}


def test_sigterm_finishes_the_step_in_flight_and_starts_no_other(tmp_path, monkeypatch):
    """A CI job cancelled with SIGTERM: the connect in flight stops waiting, no other step starts,
    the journal gets its run-end (interrupted), the lock is released, and the next apply finishes."""
    import signal

    cli = ForkedCli(tmp_path)
    cli.write("m/payments.yaml", xks_manifest())
    child = cli.start("apply", "--sandbox", "--auto-approve", "--format", "json", "m", stop_at=("wait", 1))
    assert child.wait_stopped()
    os.kill(child.pid, signal.SIGTERM)
    child.cont()
    run = child.wait()
    assert run.code == 1, run.both
    assert "Received SIGTERM" in run.err
    events = [json.loads(line) for line in run.out.splitlines()]
    outcome = {e["step"]: (e["event"], e.get("message")) for e in events if e["event"] in ("ok", "failed", "skipped")}
    assert outcome["payments-xks:create_store"][0] == "ok"
    assert outcome["payments-xks:connect_store"][0] == "failed"
    assert "interrupted" in outcome["payments-xks:connect_store"][1]
    assert {e for step, (e, _) in outcome.items() if "key" in step or "alias" in step} == {"skipped"}
    assert events[-1]["event"] == "run-end" and events[-1]["interrupted"] is True
    again = cli("apply", "--sandbox", "--auto-approve", "m")  # no lock left, no unfinished-run note
    assert again.code == 0, again.both
    assert "did not finish" not in again.err
    assert plan_after(cli, monkeypatch) == []
