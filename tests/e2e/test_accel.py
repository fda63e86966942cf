"""The sandbox accelerator (reconciler/cli/accel.py): a sandbox command run by the server that
has the emulator loaded behaves exactly as in its own process, signals reach it, it dies with its
caller, and no server is left behind (each test stops the one it started)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from reconciler.cli import accel
from tests.e2e.helpers import Cli, xks_manifest

pytestmark = pytest.mark.e2e


@pytest.fixture
def sockets():
    """A short private directory for the server's socket (a socket path must be short)."""
    directory = Path(tempfile.mkdtemp(prefix="acc-"))
    directory.chmod(0o700)
    yield directory
    accel.stop_servers(directory)  # and waits until they have gone
    shutil.rmtree(directory, ignore_errors=True)


def accelerated(tmp_path: Path, sockets: Path) -> Cli:
    cli = Cli(tmp_path)
    cli.env.update({accel.SWITCH: "on", accel.DIR_ENV: str(sockets)})
    return cli


def wait_for_server(sockets: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sockets.glob("sandbox-*.sock"):
            if accel._answers(path):
                return
        time.sleep(0.1)
    pytest.fail("the sandbox server did not start")


def test_commands_run_by_the_server_behave_as_in_their_own_process(tmp_path, sockets):
    cli = accelerated(tmp_path / "a", sockets)
    cli.workdir.mkdir()
    cli.write("m/payments.yaml", xks_manifest())
    first = cli("plan", "--sandbox", "m")  # no server yet: runs itself, then starts one
    assert first.code == 2, first.both
    wait_for_server(sockets)

    runs = {}
    for mode in ("off", "on"):
        cli.env[accel.SWITCH] = mode
        runs[mode] = [cli("plan", "--sandbox", "--format", "json", "m"), cli("apply", "--sandbox", "m"),
                      cli("plan", "--bogus", "m"), cli("sandbox", "advance", "nope")]
    on, off = runs["on"], runs["off"]
    assert [r.code for r in on] == [r.code for r in off] == [2, 1, 1, 1]
    assert json.loads(on[0].out)["steps"] == json.loads(off[0].out)["steps"]
    assert on[1].err == off[1].err and "no terminal to ask on" in on[1].err
    assert on[2].err == off[2].err and on[3].err == off[3].err
    applied = cli("apply", "--sandbox", "--auto-approve", "m")
    assert applied.code == 0 and "Converged" in applied.out
    cli.env[accel.SWITCH] = "off"
    assert cli("plan", "--sandbox", "m").code == 0  # a process of its own sees what the server's child did

    # a pipe closed by its reader does not hang the command
    piped = subprocess.run(f"{sys.executable} -m reconciler status --sandbox m | head -1", shell=True,
                           cwd=cli.workdir, env=cli.env, capture_output=True, text=True, timeout=60)
    assert piped.stdout.startswith("Region us-east-1")


def test_each_command_the_server_runs_draws_its_own_key_ids(tmp_path, sockets):
    """The children of the server inherited its random generators: the same manifests applied in two
    sandboxes got the same key ids, and a command re-run after a kill made keys with the ids of the
    keys the killed one had made, replacing them in the emulator. Each child now seeds them afresh."""
    ids = []
    for name in ("one", "two"):
        cli = accelerated(tmp_path / name, sockets)
        cli.workdir.mkdir()
        cli.write("m/payments.yaml", xks_manifest())
        if name == "one":
            assert cli("plan", "--sandbox", "m").code == 2  # starts the server
            wait_for_server(sockets)
        applied = cli("apply", "--sandbox", "--auto-approve", "--format", "json", "m")
        assert applied.code == 0, applied.both
        ids.append({e["message"].split()[-1] for e in map(json.loads, applied.out.splitlines())
                    if e.get("event") == "ok" and e.get("action") == "create_key"})
    assert len(ids[0]) == len(ids[1]) == 2 and not ids[0] & ids[1], ids


def test_the_caller_hands_the_server_its_command_and_streams(tmp_path, sockets, monkeypatch):
    """What goes over the socket: a stand-in server receives the arguments, the working directory,
    the environment and three file descriptors, and its answer is the caller's exit code."""
    monkeypatch.setenv(accel.SWITCH, "on")
    monkeypatch.setenv(accel.DIR_ENV, str(sockets))
    path = accel.socket_path()
    assert path is not None and path.parent == sockets
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    seen = {}

    def stand_in() -> None:
        conn, _ = listener.accept()
        with conn:
            data, fds, _, _ = socket.recv_fds(conn, 4, 3)
            length = struct.unpack("!I", data)[0]
            body = b""
            while len(body) < length:
                body += conn.recv(length)
            seen.update(json.loads(body), fds=len(fds))
            for fd in fds:
                os.close(fd)
            conn.sendall(b'{"pid": 1}\n{"exit": 2}\n')

    thread = threading.Thread(target=stand_in)
    thread.start()
    try:
        assert accel.run(["plan", "--sandbox", "m"]) == 2
    finally:
        thread.join(10)
        listener.close()
    assert seen["argv"] == ["plan", "--sandbox", "m"] and seen["cwd"] == os.getcwd() and seen["fds"] == 3
    assert seen["env"][accel.DIR_ENV] == str(sockets)


def _slow_apply(tmp_path: Path, sockets: Path) -> tuple[Cli, subprocess.Popen]:
    cli = accelerated(tmp_path / "w", sockets)
    cli.workdir.mkdir()
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("sandbox", "fault", "--latency-ms", "400").code == 0  # real time per request
    wait_for_server(sockets)
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "--sandbox", "--auto-approve", "m"],
                            cwd=cli.workdir, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = cli.sandbox_dir / "apply-us-east-1.lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().strip()):  # the apply holds its lock: it is under way
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.5)  # reading the live state takes seconds at this latency
    return cli, proc


def test_sigterm_reaches_the_command(tmp_path, sockets):
    cli, proc = _slow_apply(tmp_path, sockets)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert "Received SIGTERM" in err
    assert cli("sandbox", "fault", "--clear").code == 0
    again = cli("apply", "--sandbox", "--auto-approve", "m")  # the lock was released
    assert again.code == 0, again.both


def test_a_killed_caller_takes_its_command_with_it(tmp_path, sockets):
    cli, proc = _slow_apply(tmp_path, sockets)
    lock = cli.sandbox_dir / "apply-us-east-1.lock"
    holder = json.loads(lock.read_text())["PID"]  # the server's child runs the apply and holds its lock
    assert holder != proc.pid
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(holder, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the command went on after its caller was killed")
    assert cli("sandbox", "fault", "--clear").code == 0
    again = cli("apply", "--sandbox", "--auto-approve", "m")
    assert again.code == 0, again.both


def test_which_commands_go_to_the_server_and_to_which(monkeypatch, tmp_path):
    monkeypatch.setenv(accel.SWITCH, "on")
    assert accel.wanted(["plan", "--sandbox", "m"]) and accel.wanted(["sandbox", "advance", "1d"])
    assert not accel.wanted(["plan", "m"])  # AWS: never
    assert not accel.wanted(["sandbox", "serve"]) and not accel.wanted(["plan", "--sandbox", "--help"])
    assert not accel.wanted(["validate", "m"]) and not accel.wanted([])
    monkeypatch.setenv(accel.SWITCH, "off")
    assert not accel.wanted(["plan", "--sandbox", "m"])
    monkeypatch.setenv(accel.SWITCH, "on")
    before = accel._fingerprint()
    monkeypatch.setenv("MOTO_ALLOW_NONEXISTENT_REGION", "true")  # read by moto when imported
    assert accel._fingerprint() != before
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    monkeypatch.setenv(accel.DIR_ENV, str(shared))
    assert accel.socket_path() is None  # a directory others can enter is not used
