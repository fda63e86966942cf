"""What the README's lifecycle section promises about a decommission in progress."""

from __future__ import annotations

import json

from tests.day2.helpers import Sandbox
from tests.e2e.helpers import xks_manifest


def test_a_decommission_can_be_undone_before_the_keys_are_deleted(sb: Sandbox):
    sb.write("m/payments.yaml", xks_manifest())
    assert sb.run("apply", "--sandbox", "--auto-approve", "m").code == 0
    sb.write("m/payments.yaml", xks_manifest(state="absent"))
    assert sb.run("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m").code == 2

    # changed our mind: the store is declared present again, its keys with it
    sb.write("m/payments.yaml", xks_manifest())
    planned = sb.run("plan", "--sandbox", "--format", "json", "m")
    assert planned.code == 2
    actions = [s["action"] for s in json.loads(planned.out)["steps"]]
    assert actions.count("cancel_key_deletion") == 2 and "connect_store" in actions
    assert not any(s["destructive"] for s in json.loads(planned.out)["steps"])
    applied = sb.run("apply", "--sandbox", "--auto-approve", "m")  # no --allow-destroy needed
    assert applied.code == 0, applied.both
    assert sb.run("plan", "--sandbox", "m").code == 0
    report = json.loads(sb.run("status", "--sandbox", "--format", "json", "m").out)
    assert report["stores"][0]["connectionState"] == "CONNECTED"
    assert report["stores"][0]["keyStates"] == {"Enabled": 2}
