"""Preflight of the XKS proxies (``plan``, ``reconciler preflight``, ``apply``), against real local
proxies registered in the embedded sandbox. Each problem is caught before any KMS write and named
with the ConnectionErrorCode or exception KMS would have given (the table of
reconciler.sandbox.xks_proxy.outcomes; ConnectionErrorCode and the XksProxy* / XksKey* exceptions
are the KMS API Reference's)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest

from reconciler.sandbox.control import EmbeddedControl, XksProxyRegistration
from reconciler.sandbox.xks_proxy import CertificateAuthority, ProxyConfig, ProxyServer, XksProxy
from reconciler.sandbox.xks_proxy.tls import self_signed_certificate
from tests.e2e.helpers import ACCESS_KEY_ID, SECRET, xks_manifest

pytestmark = pytest.mark.e2e

HOST = "xks.example.com"
OTHER_SECRET = "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlci1zZWNyZXQ="
NEW_AKID = "ZYXWVUTSRQPONMLKJIHG7654"


def config(**overrides: Any) -> ProxyConfig:
    data: dict[str, Any] = {"uriPath": "/kms/xks/v1",
                            "credentials": [{"accessKeyId": ACCESS_KEY_ID, "secretAccessKey": SECRET}],
                            "keys": [{"id": "ext-key-0001"}, {"id": "ext-key-0002"}]}
    data.update(overrides)
    return ProxyConfig.model_validate(data)


class Proxy:
    """A proxy on a free port with a certificate of the sandbox's CA, registered for HOST."""

    def __init__(self, cli: Any, proxy_config: ProxyConfig, certificate: Any = None) -> None:
        cli.sandbox_dir.mkdir(parents=True, exist_ok=True)
        self.ca = CertificateAuthority.load_or_create(cli.sandbox_dir)
        self.server = ProxyServer(XksProxy(proxy_config), certificate=certificate or self.ca.issue([HOST]),
                                  ca_pem=self.ca.cert_pem).start()
        info = self.server.info()
        EmbeddedControl(str(cli.sandbox_dir)).register_xks_proxy(
            XksProxyRegistration(HOST, info.host, info.port, "https", self.ca.cert_pem.decode()))

    @property
    def proxy(self) -> XksProxy:
        return self.server.proxy


@pytest.fixture
def start(cli) -> Iterator[Any]:
    servers: list[Proxy] = []

    def make(proxy_config: ProxyConfig | None = None, certificate: Any = None) -> Proxy:
        servers.append(Proxy(cli, proxy_config or config(), certificate))
        return servers[-1]

    yield make
    for server in servers:
        server.server.stop()


def stores(cli) -> list:
    with cli.kms() as kms:
        return kms.describe_custom_key_stores()["CustomKeyStores"]


def plan_json(cli) -> dict:
    run = cli("plan", "--sandbox", "stores", "--format", "json")
    assert run.code == 1, run.both  # a failed preflight check: the plan cannot be applied as it is
    return json.loads(run.out)


def failures(plan: dict) -> list[dict]:
    return [c for c in plan["preflight"] if c["status"] == "fail"]


def write_manifest(cli, **kwargs: Any) -> None:
    cli.write("stores/payments.yaml", xks_manifest(endpoint=f"https://{HOST}", **kwargs))


def test_a_healthy_proxy_passes_every_check_and_apply_converges_with_a_round_trip(cli, start) -> None:
    write_manifest(cli)
    proxy = start()
    run = cli("preflight", "--sandbox", "stores")
    assert run.code == 0, run.both
    for check in ("dns", "tls", "health", "ekm", "latency", "key"):
        assert f": {check}: " in run.out
    assert SECRET not in run.both
    run = cli("apply", "--sandbox", "stores", "--auto-approve")
    assert run.code == 0, run.both
    assert "[ok] payments-xks: health" in run.out
    with cli.kms() as kms:
        blob = kms.encrypt(KeyId="alias/payments-primary", Plaintext=b"through the proxy")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"through the proxy"
    assert {c.kind for c in proxy.proxy.calls} >= {"health", "metadata", "encrypt", "decrypt"}


CASES = {
    # name: (proxy config overrides, ControlCall, failing check, expected code or exception)
    "wrong secret": (dict(credentials=[{"accessKeyId": ACCESS_KEY_ID, "secretAccessKey": OTHER_SECRET}]), None,
                     "health", "INVALID_CREDENTIALS"),
    "wrong path": (dict(uriPath="/other/kms/xks/v1"), None, "health", "XKS_PROXY_INVALID_CONFIGURATION"),
    # an answer after KMS's 250 ms is, to KMS, no answer: XKS_PROXY_TIMED_OUT, whatever it said
    "slow proxy": (dict(latencyMs={"health": 300}), None, "health", "XKS_PROXY_TIMED_OUT"),
    "slow proxy with a wrong secret": (dict(latencyMs={"health": 300},
                                            credentials=[{"accessKeyId": ACCESS_KEY_ID, "secretAccessKey": OTHER_SECRET}]),
                                       None, "health", "XKS_PROXY_TIMED_OUT"),
    "slow proxy, every EKM unavailable": (dict(latencyMs={"health": 300}), lambda p: p.controls.set_health("UNAVAILABLE"),
                                          "health", "XKS_PROXY_TIMED_OUT"),
    # CreateKey's GetKeyMetadata has the same 250 ms: the emulator fails CreateKey on it
    "slow key metadata": (dict(latencyMs={"metadata": 300}), None, "key", "CustomKeyStoreInvalidStateException"),
    "every EKM unavailable": ({}, lambda p: p.controls.set_health("UNAVAILABLE"), "ekm", "XKS_PROXY_NOT_REACHABLE"),
    "disabled key": (dict(keys=[{"id": "ext-key-0001", "status": "DISABLED"}, {"id": "ext-key-0002"}]), None,
                     "key", "XksKeyInvalidConfigurationException"),
    "wrong key spec": (dict(keys=[{"id": "ext-key-0001", "spec": "RSA_2048"}, {"id": "ext-key-0002"}]), None,
                       "key", "XksKeyInvalidConfigurationException"),
    "usage without DECRYPT": (dict(keys=[{"id": "ext-key-0001", "usage": ["ENCRYPT"]}, {"id": "ext-key-0002"}]),
                              None, "key", "XksKeyInvalidConfigurationException"),
    "missing key": (dict(keys=[{"id": "ext-key-0002"}]), None, "key", "XksKeyNotFoundException"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_problem_is_caught_by_plan_before_any_kms_write(cli, start, case) -> None:
    overrides, control, check, expected = CASES[case]
    write_manifest(cli)
    proxy = start(config(**overrides))
    if control:
        control(proxy.proxy)
    plan = plan_json(cli)
    failed = failures(plan)
    assert {f["check"] for f in failed} == {check}, failed  # a slow proxy fails every key's check
    assert expected in (failed[0]["connectionErrorCode"], failed[0]["exception"])
    assert failed[0]["fix"]
    assert stores(cli) == []
    assert not any(c.kms_operation in ("CreateCustomKeyStore", "ConnectCustomKeyStore", "CreateKey")
                   for c in proxy.proxy.calls)


@pytest.mark.parametrize("certificate", ["expired", "self-signed"])
def test_expired_and_self_signed_certificates_are_XKS_PROXY_INVALID_TLS_CONFIGURATION(cli, start, certificate) -> None:
    write_manifest(cli)
    ca = CertificateAuthority.load_or_create((cli.sandbox_dir.mkdir(parents=True, exist_ok=True), cli.sandbox_dir)[1])
    past = datetime.now(timezone.utc) - timedelta(days=2)
    cert = (ca.issue([HOST], not_before=past - timedelta(days=30), not_after=past) if certificate == "expired"
            else self_signed_certificate([HOST]))
    start(certificate=cert)
    failed = failures(plan_json(cli))
    assert [(f["check"], f["connectionErrorCode"]) for f in failed] == [("tls", "XKS_PROXY_INVALID_TLS_CONFIGURATION")]
    assert ("expired" if certificate == "expired" else "self-signed") in failed[0]["message"]


def test_a_certificate_expiring_within_30_days_warns(cli, start) -> None:
    write_manifest(cli)
    ca = CertificateAuthority.load_or_create((cli.sandbox_dir.mkdir(parents=True, exist_ok=True), cli.sandbox_dir)[1])
    soon = datetime.now(timezone.utc) + timedelta(days=10)
    start(certificate=ca.issue([HOST], not_after=soon))
    run = cli("plan", "--sandbox", "stores")
    assert run.code == 2, run.both
    assert "[WARN] payments-xks: tls:" in run.out and "expires in" in run.out


def test_every_plan_format_and_the_plan_file_carry_the_failure_and_apply_refuses_it(cli, start) -> None:
    write_manifest(cli)
    start(config(uriPath="/other/kms/xks/v1"))
    text = cli("plan", "--sandbox", "stores")
    assert "[FAIL] payments-xks: health:" in text.out and "XKS_PROXY_INVALID_CONFIGURATION" in text.out
    assert "spec.xks.uriPath" in text.out  # the fix
    markdown = cli("plan", "--sandbox", "stores", "--format", "markdown")
    assert "XksProxyInvalidConfigurationException" in markdown.out and "❌" in markdown.out
    saved = cli("plan", "--sandbox", "stores", "--out", "plans/plan.json")
    assert saved.code == 1
    assert failures(json.loads((cli.workdir / "plans/plan.json").read_text()))
    shown = cli("show", "plans/plan.json")
    assert "XKS_PROXY_INVALID_CONFIGURATION" in shown.out
    refused = cli("apply", "--sandbox", "plans/plan.json")
    assert refused.code == 1 and "--skip-preflight" in refused.err and "payments-xks:create_store" in refused.err
    refused = cli("apply", "--sandbox", "stores", "--auto-approve")
    assert refused.code == 1 and "preflight" in refused.err
    assert stores(cli) == []
    # --skip-preflight: KMS itself then refuses, as preflight said it would
    forced = cli("apply", "--sandbox", "stores", "--auto-approve", "--skip-preflight")
    assert forced.code == 1 and "XksProxyInvalidConfigurationException" in forced.both


def test_a_credential_rotation_is_checked_with_the_new_credential_before_the_update(cli, start) -> None:
    write_manifest(cli)
    proxy = start()
    assert cli("apply", "--sandbox", "stores", "--auto-approve").code == 0
    rotated = {"XKS_ACCESS_KEY_ID": NEW_AKID, "XKS_SECRET_ACCESS_KEY": OTHER_SECRET}
    run = cli("plan", "--sandbox", "stores", "--format", "json", env=rotated)
    plan = json.loads(run.out)
    assert [(f["check"], f["connectionErrorCode"]) for f in failures(plan)] == [("credential", "INVALID_CREDENTIALS")]
    proxy.proxy.set_credentials([(ACCESS_KEY_ID, SECRET), (NEW_AKID, OTHER_SECRET)])  # both live at once
    run = cli("apply", "--sandbox", "stores", "--auto-approve", env=rotated)
    assert run.code == 0, run.both
    assert "the new credential is accepted by the proxy" in run.out
    assert proxy.proxy.calls[-1].access_key_id == NEW_AKID
    assert OTHER_SECRET not in run.both


def test_a_vpc_endpoint_service_proxy_is_not_checked_and_an_unregistered_one_neither(cli) -> None:
    write_manifest(cli)  # nobody registered xks.example.com
    run = cli("plan", "--sandbox", "stores")
    assert run.code == 2, run.both
    assert "[not checked] payments-xks: proxy: xks.example.com is not registered" in run.out


def test_a_plan_that_calls_no_proxy_has_no_preflight(cli, start) -> None:
    write_manifest(cli)
    start()
    assert cli("apply", "--sandbox", "stores", "--auto-approve").code == 0
    run = cli("plan", "--sandbox", "stores", "--format", "json")
    assert run.code == 0 and "preflight" not in json.loads(run.out)


def test_stores_that_need_no_check_cost_nothing() -> None:
    """No step creates, connects or changes a store's proxy settings: annotate returns the plan as
    it is, without a connection (None here would fail) and without the proxy client."""
    from reconciler.plan.desired import DesiredKey, DesiredState, DesiredStore, DesiredXks
    from reconciler.plan.model import Action, Plan, Step
    from reconciler.preflight import annotate, stores_to_check

    xks = DesiredXks("PUBLIC_ENDPOINT", f"https://{HOST}", "/kms/xks/v1", ACCESS_KEY_ID)
    state = DesiredState("us-east-1", (DesiredStore("payments-xks", "EXTERNAL_KEY_STORE", xks=xks,
                                                    keys=(DesiredKey("alias/a", "ext-key-0001"),)),))
    desired = type("Desired", (), {"state": state})()
    plan = Plan("us-east-1", (Step("payments-xks:update_key:ext-key-0001", Action.update_key, "payments-xks",
                                   "description differs", key="ext-key-0001"),
                              Step("payments-xks:update_store", Action.update_store, "payments-xks", "rename",
                                   params={"changes": {"name": {"from": "a", "to": "b"}}})))
    assert stores_to_check(plan, desired) == []
    assert annotate(plan, desired, conn=None, target=None) is plan
    connect = Step("payments-xks:connect_store", Action.connect_store, "payments-xks", "connect")
    assert [s.name for s, _ in stores_to_check(Plan("us-east-1", (connect,)), desired)] == ["payments-xks"]


def test_a_fleet_plan_checks_each_targets_proxies_and_apply_refuses_the_failed_target(cli, start) -> None:
    """A fleet (reconciler.yaml) gets the same preflight as one target: the wrong uriPath is caught
    in its target's section before KMS is called, and apply refuses that target."""
    from tests.e2e.test_fleet import A, CONFIG, EAST, store

    start(config(uriPath="/other/kms/xks/v1"))
    cli.write("m/reconciler.yaml", CONFIG)
    cli.write("m/a-east.yaml", store(A, None).replace(f"https://xks-{A}.example.com", f"https://{HOST}"))
    assert cli("sandbox", "init", "m").code == 0
    run = cli("plan", "--sandbox", "m", "--format", "json")
    assert run.code == 1, run.both
    (section,) = json.loads(run.out)["targets"]
    failed = [c for c in section["plan"]["preflight"] if c["status"] == "fail"]
    assert [(f["check"], f["connectionErrorCode"]) for f in failed] == [("health", "XKS_PROXY_INVALID_CONFIGURATION")]
    applied = cli("apply", "--sandbox", "--auto-approve", "m")
    assert applied.code == 1 and "preflight found XKS proxy problems" in applied.both, applied.both
    assert f"{A}/{EAST}" in applied.both


def test_the_api_preflight_returns_the_checks_the_cli_prints(cli, start, monkeypatch) -> None:
    """reconciler.api.preflight is `reconciler preflight --format json`, as values."""
    from reconciler import api

    write_manifest(cli, keys="""
        - alias: alias/payments-primary
          xksKeyId: ext-key-0001
        - alias: alias/payments-missing
          xksKeyId: ext-key-9999
    """)
    start()
    run = cli("preflight", "--sandbox", "stores", "--format", "json")
    assert run.code == 1, run.both  # ext-key-9999 is not in the proxy
    printed = json.loads(run.out)
    for name, value in cli.env.items():
        monkeypatch.setenv(name, value)
    checks = api.preflight(cli.workdir / "stores", target=api.target(sandbox=True, sandbox_dir=str(cli.sandbox_dir)))
    ours = [c.to_dict() for c in checks]
    timed = ("message", "status", "fix", "connectionErrorCode", "exception")
    for entry in ours + printed["checks"]:
        if entry["check"] == "latency":  # measured twice, by two runs: only its presence compares
            entry.update(dict.fromkeys(timed))
    assert ours == printed["checks"]
    assert [c.key for c in checks if c.status == "fail" and c.check == "key"] == ["ext-key-9999"]
    assert SECRET not in repr(checks)
