"""The seed document's walkthrough ("Deleting an external key store"), with the real AWS CLI
against a running `reconciler sandbox serve`."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from tests.e2e.helpers import clean_env, free_port, sandbox_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def served():
    with sandbox_server() as url:
        yield url


def aws(url: str, *args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    config = tmp_path / "aws-config"
    # AWS CLI v1 would otherwise try to download https:// parameter values (the proxy endpoint)
    config.write_text("[default]\ncli_follow_urlparam = false\n")
    env.update(AWS_ACCESS_KEY_ID="sandbox", AWS_SECRET_ACCESS_KEY="sandbox", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_PAGER="")
    return subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", url, "--output", "json", *args],
                          env=env, capture_output=True, text=True, timeout=60)


def reconciler(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=60)


def test_delete_an_external_key_store_walkthrough(served, tmp_path):
    created = aws(served, "kms", "create-custom-key-store",
                  "--custom-key-store-name", "ExampleXKS",
                  "--custom-key-store-type", "EXTERNAL_KEY_STORE",
                  "--xks-proxy-connectivity", "PUBLIC_ENDPOINT",
                  "--xks-proxy-uri-endpoint", "https://myproxy.xks.example.com",
                  "--xks-proxy-uri-path", "/kms/xks/v1",
                  "--xks-proxy-authentication-credential",
                  "AccessKeyId=ABCDE23456723EXAMPLE,RawSecretAccessKey=DXjSUawnel2fr6SKC7G25CNxTyWKE5PF9XX6H/u9pSo=",
                  tmp_path=tmp_path)
    assert created.returncode == 0, created.stderr
    store_id = json.loads(created.stdout)["CustomKeyStoreId"]
    assert store_id.startswith("cks-")

    # the served sandbox's clock follows the wall clock: a connection that takes 10 minutes of it is
    # still CONNECTING when the next AWS CLI process asks, however busy the machine is
    assert reconciler("sandbox", "fault", "--connect-delay", "10m", "--endpoint-url", served).returncode == 0
    connect = aws(served, "kms", "connect-custom-key-store", "--custom-key-store-id", store_id, tmp_path=tmp_path)
    assert connect.returncode == 0, connect.stderr
    state = json.loads(aws(served, "kms", "describe-custom-key-stores", "--custom-key-store-id", store_id,
                           tmp_path=tmp_path).stdout)["CustomKeyStores"][0]["ConnectionState"]
    assert state == "CONNECTING"  # ConnectCustomKeyStore only starts connecting
    assert reconciler("sandbox", "advance", "11m", "--endpoint-url", served).returncode == 0
    entry = json.loads(aws(served, "kms", "describe-custom-key-stores", "--custom-key-store-id", store_id,
                           tmp_path=tmp_path).stdout)["CustomKeyStores"][0]
    assert entry["ConnectionState"] == "CONNECTED"
    assert "RawSecretAccessKey" not in json.dumps(entry)

    refused = aws(served, "kms", "delete-custom-key-store", "--custom-key-store-id", store_id, tmp_path=tmp_path)
    assert refused.returncode != 0
    assert "CustomKeyStoreInvalidStateException" in refused.stderr

    disconnect = aws(served, "kms", "disconnect-custom-key-store", "--custom-key-store-id", store_id, tmp_path=tmp_path)
    assert disconnect.returncode == 0, disconnect.stderr
    assert reconciler("sandbox", "advance", "30s", "--endpoint-url", served).returncode == 0

    deleted = aws(served, "kms", "delete-custom-key-store", "--custom-key-store-id", store_id, tmp_path=tmp_path)
    assert deleted.returncode == 0, deleted.stderr

    listing = aws(served, "kms", "describe-custom-key-stores", tmp_path=tmp_path)
    assert listing.returncode == 0
    assert json.loads(listing.stdout) == {"CustomKeyStores": []}

    gone = aws(served, "kms", "describe-custom-key-stores", "--custom-key-store-id", store_id, tmp_path=tmp_path)
    assert gone.returncode != 0
    assert "CustomKeyStoreNotFoundException" in gone.stderr


def test_sandbox_control_against_a_server(served):
    fault = reconciler("sandbox", "fault", "--endpoint-url", served, "--store", "x",
                       "--connection-error", "XKS_PROXY_TIMED_OUT", "--latency-ms", "5")
    assert fault.returncode == 0, fault.stderr
    settings = json.loads(fault.stdout)
    assert settings["faults"]["connectionErrors"] == {"x": "XKS_PROXY_TIMED_OUT"}
    bad = reconciler("sandbox", "fault", "--endpoint-url", served, "--store", "x", "--connection-error", "NOPE")
    assert bad.returncode == 1 and "unknown ConnectionErrorCode" in bad.stderr and "Traceback" not in bad.stderr
    assert reconciler("sandbox", "reset", "--endpoint-url", served).returncode == 0
    status = json.loads(reconciler("sandbox", "status", "--endpoint-url", served).stdout)
    assert status["faults"]["connectionErrors"] == {}


def test_init_against_a_server_prints_a_plan_for_that_server(served, tmp_path):
    """`sandbox init --endpoint-url URL` seeds the served sandbox; the plan it prints next is for
    that server (it named the embedded sandbox, which init had not seeded), and works as printed in
    a shell with the variables of the serve banner and the env file loaded."""
    from tests.day2.helpers import REPO

    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    env = {**clean_env(), "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox", "AWS_REGION": "us-east-1"}
    init = subprocess.run([sys.executable, "-m", "reconciler", "sandbox", "init", "--endpoint-url", served, "manifests"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    line = next(x for x in init.stdout.splitlines() if x.startswith("Next"))
    command = line.split(": ", 1)[1]
    assert f"reconciler plan --endpoint-url {served} manifests" in command and "--sandbox" not in command
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env.get('PATH', '')}"
    plan = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert plan.returncode == 2, plan.stdout + plan.stderr  # changes, and no refusal: init seeded what they need
    assert "refuse" not in plan.stdout.lower()


def test_control_without_a_server_is_one_clear_error():
    run = reconciler("sandbox", "advance", "1d", "--endpoint-url", f"http://127.0.0.1:{free_port()}")
    assert run.returncode == 1
    assert "no sandbox server answers" in run.stderr and "Traceback" not in run.stderr


# -- the README's sandbox walkthrough, verbatim ----------------------------------------------------

def _readme_block(containing: str) -> list[str]:
    """The command lines of the README's ```sh block that contains ``containing``."""
    from tests.day2.helpers import REPO

    blocks = re.findall(r"```sh\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    block = next(b for b in blocks if containing in b)
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_readme_sandbox_walkthrough_works_verbatim(tmp_path):
    """A newcomer's path right after install: in a clone (here: a copy of manifests/), the README's
    lines set up and apply the examples on a fresh sandbox; `sandbox serve` then serves that
    directory, and the README's AWS CLI lines read the three stores back. The only change to the
    lines is the port (a free one instead of 4566, which may be taken on a shared machine)."""
    from tests.day2.helpers import REPO

    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    bin_dir = os.path.dirname(sys.executable)  # `reconciler` and `aws`, as installed
    env = clean_env("GITHUB_")
    env.update(PATH=f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}", NO_COLOR="1", HOME=str(tmp_path),
               AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    for name in ("XKS_ACCESS_KEY_ID", "XKS_SECRET_ACCESS_KEY", "KMSUSER_PASSWORD", "LEDGER_XKS_ACCESS_KEY_ID",
                 "LEDGER_XKS_SECRET_ACCESS_KEY"):
        env.pop(name, None)

    setup = _readme_block("reconciler sandbox init")
    script = "\n".join(f'{line}\necho "exit $?" >&2' for line in setup)
    ran = subprocess.run(["bash", "--noprofile", "--norc", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=240)
    codes = [int(c) for c in re.findall(r"^exit (\d+)$", ran.stderr, re.M)]
    expected = [2 if " plan " in f" {line} " else 0 for line in setup]
    assert codes == expected, (setup, codes, ran.stdout[-3000:], ran.stderr[-3000:])
    assert "Converged" in ran.stdout

    port = str(free_port())
    serve = [line.split("#")[0].strip().replace("4566", port) for line in _readme_block("reconciler sandbox serve")]
    assert serve == [f"reconciler sandbox serve --port {port}"]
    server = subprocess.Popen(shlex.split(serve[0]), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        banner = [server.stdout.readline() for _ in range(4)]
        assert "serving the sandbox in .reconciler/sandbox" in banner[0], banner
        aws_lines = [line.replace("4566", port) for line in _readme_block("aws kms describe-custom-key-stores")]
        assert [line.strip() for line in banner[2:4]] == aws_lines  # the README shows what serve prints
        read = subprocess.run(["bash", "--noprofile", "--norc", "-ec", "\n".join(aws_lines)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert read.returncode == 0, read.stderr
        stores = {s["CustomKeyStoreName"]: s for s in json.loads(read.stdout)["CustomKeyStores"]}
        assert sorted(stores) == ["ledger-vpc-xks", "payments-xks", "records-cloudhsm"]
        assert {s["ConnectionState"] for s in stores.values()} == {"CONNECTED"}

        # one account: a change through the server is what --sandbox sees, and the other way round
        disconnect = "\n".join(aws_lines[:1] + ["aws kms disconnect-custom-key-store --custom-key-store-id "
                                                + stores["payments-xks"]["CustomKeyStoreId"]])
        assert subprocess.run(["bash", "-ec", disconnect], cwd=tmp_path, env=env, timeout=120).returncode == 0
        assert subprocess.run(["reconciler", "sandbox", "advance", "1m"], cwd=tmp_path, env=env,
                              capture_output=True, timeout=120).returncode == 0
        status = subprocess.run(["reconciler", "status", "--sandbox", "--format", "json"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120)
        states = {s["name"]: s["connectionState"] for s in json.loads(status.stdout)["stores"]}
        assert states["payments-xks"] == "DISCONNECTED", status.stdout
        again = subprocess.run(["bash", "-ec", "\n".join(aws_lines)], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=120)
        after = {s["CustomKeyStoreName"]: s["ConnectionState"] for s in json.loads(again.stdout)["CustomKeyStores"]}
        assert after["payments-xks"] == "DISCONNECTED"
    finally:
        server.terminate()
        server.wait(timeout=10)
