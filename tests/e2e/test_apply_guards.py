"""Apply's guards: the account check, failure isolation between stores, the per-step timeout."""

from __future__ import annotations

import json

import pytest

from tests.e2e.helpers import xks_manifest

pytestmark = pytest.mark.e2e


def store_names(cli) -> set[str]:
    with cli.kms() as kms:
        return {s["CustomKeyStoreName"] for s in kms.describe_custom_key_stores()["CustomKeyStores"]}


def test_store_for_another_account_is_refused_before_any_change(cli):
    # the sandbox's STS answers GetCallerIdentity with moto's account 123456789012
    cli.write("m/payments.yaml", xks_manifest().replace("  region: us-east-1\n",
                                                        "  region: us-east-1\n  account: \"111122223333\"\n"))
    run = cli("apply", "--sandbox", "--auto-approve", "m")
    assert run.code == 1
    assert "123456789012" in run.err and "111122223333" in run.err and "nothing was changed" in run.err
    assert store_names(cli) == set()
    cli.write("m/payments.yaml", xks_manifest().replace("  region: us-east-1\n",
                                                        "  region: us-east-1\n  account: \"123456789012\"\n"))
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0


def test_a_failed_store_skips_its_dependents_while_other_stores_converge(cli):
    cli.write("m/a.yaml", xks_manifest(name="store-a", endpoint="https://a.example.com"))
    cli.write("m/b.yaml", xks_manifest(name="store-b", endpoint="https://b.example.com").replace(
        "ext-key-000", "b-key-000").replace("alias/payments", "alias/b"))
    cli("sandbox", "fault", "--store", "store-a", "--connection-error", "XKS_PROXY_INVALID_TLS_CONFIGURATION")
    run = cli("apply", "--sandbox", "--auto-approve", "--format", "json", "m")
    assert run.code == 1
    events = [json.loads(line) for line in run.out.splitlines()]
    outcome = {e["step"]: e["event"] for e in events if e["event"] in ("ok", "failed", "skipped")}
    assert outcome["store-a:connect_store"] == "failed"
    assert outcome["store-a:create_key:ext-key-0001"] == "skipped"
    assert outcome["store-a:create_alias:alias/payments-primary"] == "skipped"
    assert all(v == "ok" for k, v in outcome.items() if k.startswith("store-b:"))
    failed = next(e for e in events if e["event"] == "failed")
    assert failed["errorCode"] == "XKS_PROXY_INVALID_TLS_CONFIGURATION" and "TLS 1.2" in failed["message"]
    # the fix lands, and the next apply repairs the FAILED store (disconnect, then connect)
    cli("sandbox", "fault", "--store", "store-a", "--connection-error", "NONE")
    again = cli("apply", "--sandbox", "--auto-approve", "m")
    assert again.code == 0, again.both
    assert cli("plan", "--sandbox", "m").code == 0


def test_wait_longer_than_timeout_fails_the_step_with_the_flag_named(cli):
    cli.write("m/payments.yaml", xks_manifest())
    cli("sandbox", "fault", "--connect-delay", "2h")
    run = cli("apply", "--sandbox", "--auto-approve", "--timeout", "10m", "m")
    assert run.code == 1
    assert "timed out" in run.out and "--timeout" in run.out
    later = cli("apply", "--sandbox", "--auto-approve", "--timeout", "3h", "m")
    assert later.code == 0, later.both
