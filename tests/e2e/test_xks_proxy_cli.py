"""`reconciler sandbox xks-proxy serve`: real local proxies in processes of their own, registered
in the sandbox while they run. The example XKS manifests (manifests/) converge against them, and
an Encrypt/Decrypt round trip with the created keys goes through the emulator and the proxy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.day2.helpers import REPO
from tests.e2e.helpers import Cli, sandbox_server

pytestmark = pytest.mark.e2e


def proxy_config(path: Path, uri_path: str, akid: str, secret_variable: str, keys: list[str]) -> None:
    path.write_text("\n".join([f"uriPath: {uri_path}", "credentials:", f"  - accessKeyId: {akid}",
                               f"    secretAccessKey: {{fromEnv: {secret_variable}}}", "keys:",
                               *[f"  - id: {key}" for key in keys]]) + "\n")


@contextmanager
def xks_proxy(cli: Cli, config: str, hostname: str, *flags: str) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "sandbox", "xks-proxy", "serve", "--config", config,
                             "--hostname", hostname, *flags], cwd=cli.workdir, env=cli.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("Registered "):
            break
    assert proc.poll() is None, "".join(seen)
    try:
        yield proc
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=10)
        assert f"Unregistered {hostname}." in rest


def test_the_example_xks_manifests_converge_against_local_proxies_and_a_round_trip_works(cli: Cli) -> None:
    shutil.copytree(REPO / "manifests", cli.workdir / "manifests")
    assert cli("sandbox", "init", "manifests").code == 0
    env_file = (cli.sandbox_dir / "env.sh").read_text()
    values = dict(line[len("export "):].split("=", 1) for line in env_file.splitlines() if line.startswith("export "))
    values = {k: v.strip("'\"") for k, v in values.items()}
    cli.env.update(values)
    proxy_config(cli.workdir / "payments.yaml", "/kms/xks/v1", values["XKS_ACCESS_KEY_ID"], "XKS_SECRET_ACCESS_KEY",
                 ["payments-key-0001", "payments-key-0002"])
    proxy_config(cli.workdir / "ledger.yaml", "/ledger/kms/xks/v1", values["LEDGER_XKS_ACCESS_KEY_ID"],
                 "LEDGER_XKS_SECRET_ACCESS_KEY", ["ledger-key-0001"])
    with xks_proxy(cli, "payments.yaml", "xks.payments.example.com"), \
            xks_proxy(cli, "ledger.yaml", "xks.ledger.internal.example.com"):
        registry = json.loads(cli("sandbox", "status").out)["xksProxies"]
        assert set(registry) == {"xks.payments.example.com", "xks.ledger.internal.example.com"}
        run = cli("apply", "--sandbox", "manifests", "--auto-approve")
        assert run.code == 0, run.both
        assert "[ok] payments-xks: health" in run.out
        assert "[not checked] ledger-vpc-xks: proxy: the proxy is behind a VPC endpoint service" in run.out
        assert cli("plan", "--sandbox", "manifests").code == 0
        with cli.kms() as kms:
            states = {s["CustomKeyStoreName"]: s["ConnectionState"]
                      for s in kms.describe_custom_key_stores()["CustomKeyStores"]}
            assert states == {"payments-xks": "CONNECTED", "ledger-vpc-xks": "CONNECTED",
                              "records-cloudhsm": "CONNECTED"}
            for alias in ("alias/payments-primary", "alias/ledger-entries"):
                blob = kms.encrypt(KeyId=alias, Plaintext=b"round trip")["CiphertextBlob"]
                assert blob[36:40] == b"XKS1"  # the proxy's layer (double encryption)
                assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"round trip"
        for secret in (values["XKS_SECRET_ACCESS_KEY"], values["LEDGER_XKS_SECRET_ACCESS_KEY"]):
            assert all(secret not in r.both for r in cli.runs)
    assert json.loads(cli("sandbox", "status").out)["xksProxies"] == {}  # unregistered as they stopped


def test_a_served_sandbox_registers_the_proxy_too(cli: Cli) -> None:
    proxy_config(cli.workdir / "proxy.yaml", "/kms/xks/v1", "AKIAXKSPROXYEXAMPLE2", "XKS_SECRET_ACCESS_KEY", ["k"])
    with sandbox_server() as url:
        with xks_proxy(cli, "proxy.yaml", "xks.served.example.com", "--endpoint-url", url):
            status = json.loads(cli("sandbox", "status", "--endpoint-url", url).out)
            assert list(status["xksProxies"]) == ["xks.served.example.com"]
        assert json.loads(cli("sandbox", "status", "--endpoint-url", url).out)["xksProxies"] == {}


def test_a_bad_configuration_is_one_message_with_its_line_and_exit_1(cli: Cli) -> None:
    cli.write("proxy.yaml", "uriPath: /kms/xks/v1\ncredentials: []\nkeys:\n  - id: k\n    statu: ENABLED\n")
    run = cli("sandbox", "xks-proxy", "serve", "--config", "proxy.yaml")
    assert run.code == 1
    assert "proxy.yaml:5:5: unknown field 'statu'" in run.err and "Traceback" not in run.both
