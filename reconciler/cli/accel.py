"""Sandbox commands that answer at once: a process with the emulator imported forks one child per
command.

Importing the emulator (moto, with boto3, werkzeug, cryptography and the rest) takes most of a
second, in every ``--sandbox`` command and ``reconciler sandbox ...`` verb (see
docs/performance.md). So the first such command, once it has run, starts in the background a
process that imports all of it once and waits on a Unix socket in a private directory. Each later
sandbox command hands it its arguments, working directory, environment, umask and standard
streams (the file descriptors themselves, over the socket): the server forks a child that runs the
command exactly as the command's own process would (the same code, the same sandbox directory and
lock), writing straight to the caller's terminal or pipes, and the caller exits with the child's
exit code. SIGINT, SIGTERM and SIGHUP sent to the caller reach the child; if the caller dies, the
child is killed.

Only sandbox commands go this way: commands that reach AWS never do. The server runs as the user,
answers only the user's own processes (a 0700 directory, and the peer's uid is checked), keeps no
command's environment, and exits after :data:`IDLE_SECONDS` without a command. Its socket's name
carries a fingerprint of the interpreter, the code of reconciler and of the libraries the emulator
is made of, so an upgraded or edited installation never talks to a server running older code.
``RECONCILER_SANDBOX_ACCEL=off`` turns all of it off (the command then runs in its own process).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import socket
    from pathlib import Path

# every command calls wanted(); the rest of what this module needs is imported where it is used,
# so that --help and the commands that do not go to the server pay nothing for it

SWITCH = "RECONCILER_SANDBOX_ACCEL"
DIR_ENV = "RECONCILER_SANDBOX_ACCEL_DIR"  # where the socket lives (default: a private temp directory)
IDLE_SECONDS = 600.0
LIBRARIES = ("moto", "boto3", "botocore", "click", "pydantic", "pydantic_core", "yaml", "rich", "werkzeug")
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# what the server's own environment keeps of the environment it is started from (never secrets)
SERVER_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "XDG_RUNTIME_DIR", SWITCH, DIR_ENV)


def enabled() -> bool:
    return os.environ.get(SWITCH, "on").strip().lower() not in ("off", "0", "false", "no")


def wanted(argv: list[str]) -> bool:
    """A command that imports the emulator: ``--sandbox`` on plan, preflight, apply, status or export,
    or a ``sandbox`` verb (not ``serve`` nor ``xks-proxy serve``, which run until stopped); never
    help, version or completion."""
    if not enabled() or any(a in ("-h", "--help", "--version") for a in argv):
        return False
    if any(name.startswith("_RECONCILER_COMPLETE") for name in os.environ):
        return False
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return False
    if words[0] == "sandbox":
        return len(words) > 1 and words[1] not in ("serve", "xks-proxy")
    return words[0] in ("plan", "preflight", "apply", "status", "export") and "--sandbox" in argv


def _fingerprint() -> str:
    """The interpreter, its import path, and the files of the code the server would run."""
    import hashlib
    import importlib.util
    from pathlib import Path

    # sys.path[0] is the caller's directory with `python -m`: not part of the installation
    digest = hashlib.sha256(repr((sys.executable, sys.version, sys.path[1:])).encode())
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        st = path.stat()
        digest.update(f"{path}:{st.st_mtime_ns}:{st.st_size}".encode())
    for name in LIBRARIES:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        st = os.stat(origin) if origin and os.path.exists(origin) else None
        digest.update(f"{name}:{origin}:{st.st_mtime_ns if st else 0}".encode())
    settings = sorted((k, v) for k, v in os.environ.items() if k.startswith(("MOTO_", "PYTHON")))
    digest.update(repr(settings).encode())
    return digest.hexdigest()[:16]


def socket_path() -> Path | None:
    """The server's socket for this installation, in a directory only this user can enter; None
    where that cannot be had (a directory someone else owns or can enter, a path too long)."""
    import tempfile
    from pathlib import Path

    base = os.environ.get(DIR_ENV) or os.path.join(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir(),
                                                   f"reconciler-{os.getuid()}")
    directory = Path(base)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = directory.stat()
    except OSError:
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    try:
        path = directory / f"sandbox-{_fingerprint()}.sock"
    except OSError:  # a file of the installation went away while it was being read
        return None
    return path if len(os.fsencode(path)) < 100 else None


# -- the caller ----------------------------------------------------------------------------------

def run(argv: list[str]) -> int | None:
    """Run ``reconciler ARGV`` in a child of the server and return its exit code; None when this
    command does not go that way or no server answers (the caller then runs it itself)."""
    import json
    import socket
    import struct

    if not wanted(argv):
        return None
    path = socket_path()
    if path is None:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
        umask = os.umask(0)
        os.umask(umask)
        request = json.dumps({
            "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask,
            "streams": [[getattr(s, "encoding", None) or "utf-8", getattr(s, "errors", None) or "strict"]
                        for s in (sys.stdin, sys.stdout, sys.stderr)],
        }).encode()
    except OSError:  # no server; or no working directory, which the command will say itself
        conn.close()
        return None
    with conn:
        try:
            socket.send_fds(conn, [struct.pack("!I", len(request))], [0, 1, 2])
            conn.sendall(request)
        except OSError:
            return None  # the server went away before it took the command: nothing ran
        return _wait(conn)


def _wait(conn: socket.socket) -> int:
    child: list[int] = []
    received: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        received.append(signum)
        if child:
            os.kill(child[0], signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    for message in _messages(conn):
        if "pid" in message:
            child.append(message["pid"])
            for signum in received:  # a signal that came before the child was known
                os.kill(child[0], signum)
        elif "exit" in message:
            return int(message["exit"])
    # the child ended without a word: killed by a signal (perhaps the one it was sent)
    if received:
        signal.signal(received[-1], signal.SIG_DFL)
        os.kill(os.getpid(), received[-1])
    print("Error: the sandbox command's process ended without an exit code; run it again, or with "
          f"{SWITCH}=off", file=sys.stderr)
    return 1


def _messages(conn: socket.socket):
    import json

    buffer = b""
    while True:
        try:
            chunk = conn.recv(4096)
        except InterruptedError:
            continue
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield json.loads(line)


def start_server(argv: list[str]) -> None:
    """After a sandbox command ran in its own process, start the server in the background (if none
    answers), so the next one is fast. Never fails the command."""
    try:
        path = socket_path() if wanted(argv) else None
        if path is None or _answers(path) or not _claim_start(path):
            return
        import subprocess

        env = {k: v for k, v in os.environ.items() if k in SERVER_ENV or k.startswith(("MOTO_", "PYTHON"))}
        subprocess.Popen([sys.executable, "-m", "reconciler.cli.accel", str(path)], env=env, cwd="/",
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, close_fds=True)
    except Exception:  # noqa: BLE001 - speed is a bonus; the command itself has succeeded or failed already
        pass


def _claim_start(path: Path) -> bool:
    """Only one caller starts a server (it takes a second or two to be ready): a marker file, which
    the server removes once it listens, or which goes stale after a minute."""
    import time

    marker = path.with_suffix(".starting")
    try:
        if time.time() - marker.stat().st_mtime < 60:
            return False
        marker.unlink()
    except FileNotFoundError:
        pass
    try:
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    return True


def _answers(path: Path) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


# -- the server ----------------------------------------------------------------------------------

def _prewarm() -> None:
    """Import and initialise, once, what sandbox commands spend their start-up on."""
    import reconciler.cli as cli

    for name in cli.cli.list_commands(cli.click.Context(cli.cli)):  # type: ignore[attr-defined]
        cli.cli.get_command(cli.click.Context(cli.cli), name)  # type: ignore[attr-defined]
    import moto.cloudhsmv2.models  # noqa: F401
    import moto.iam.models  # noqa: F401  (imported by moto's first request)
    import moto.kms.models  # noqa: F401
    import rich.console  # noqa: F401

    import reconciler.adopt.export  # noqa: F401
    import reconciler.apply.executor  # noqa: F401
    import reconciler.apply.journal  # noqa: F401
    import reconciler.apply.lock  # noqa: F401
    import reconciler.apply.progress  # noqa: F401
    import reconciler.apply.run  # noqa: F401
    import reconciler.live.cache  # noqa: F401
    import reconciler.live.reader  # noqa: F401
    import reconciler.live.status  # noqa: F401
    import reconciler.manifest.loader  # noqa: F401
    import reconciler.plan.files  # noqa: F401
    import reconciler.plan.make  # noqa: F401
    import reconciler.plan.render  # noqa: F401
    import reconciler.sandbox.control  # noqa: F401
    import reconciler.sandbox.fixtures  # noqa: F401
    import reconciler.sandbox.seed  # noqa: F401
    from reconciler.sandbox.embedded import boto3_session
    from reconciler.sandbox.install import install
    from reconciler.sandbox.apimodel import service_model

    install()
    for name, value in (("AWS_ACCESS_KEY_ID", "sandbox"), ("AWS_SECRET_ACCESS_KEY", "sandbox")):
        os.environ[name] = value
    session = boto3_session()
    session.client("kms", region_name="us-east-1")  # botocore's endpoint and KMS data, parsed once
    session.get_available_regions("kms")
    service_model()


def serve(path: Path) -> None:
    import socket

    _prewarm()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        if path.exists() and not _answers(path):
            path.unlink()  # a server that died left its socket behind
        listener.bind(str(path))
    except OSError:
        path.with_suffix(".starting").unlink(missing_ok=True)
        return  # another server took this path first
    finally:
        os.umask(old_umask)
    listener.listen(16)
    path.with_suffix(".starting").unlink(missing_ok=True)
    listener.settimeout(IDLE_SECONDS)
    inode = path.stat().st_ino
    pid_file = path.with_suffix(".pid")
    fd = os.open(pid_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{os.getpid()}\n")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                return
            conn.settimeout(None)
            try:
                _fork_for(conn, listener)
            finally:
                conn.close()
    finally:
        listener.close()
        try:
            if path.stat().st_ino == inode:
                path.unlink()
                pid_file.unlink()
        except OSError:
            pass


def stop_servers(directory: Path, wait: float = 10.0) -> list[int]:
    """Stop the servers whose sockets are in ``directory`` (tests, benchmarks), waiting up to
    ``wait`` seconds for them to end; their pids."""
    import time

    stopped = []
    for pid_file in directory.glob("sandbox-*.pid"):
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + wait
    for pid in stopped:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    return stopped


def _fork_for(conn: socket.socket, listener: socket.socket) -> None:
    import socket
    import struct

    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    if uid != os.getuid():
        return
    try:
        data, fds, _, _ = socket.recv_fds(conn, 4, 3)
    except OSError:
        return
    try:
        if len(data) != 4 or len(fds) != 3:
            return
        if os.fork() == 0:
            listener.close()
            _child(conn, fds, struct.unpack("!I", data)[0])
    finally:
        for fd in fds:  # the caller's streams stay open only in the child
            os.close(fd)


def _child(conn: socket.socket, fds: list[int], length: int) -> None:
    """Become the command's process, run it, report its exit code. Never returns."""
    import json

    code = 1
    try:
        for sig, handler in ((signal.SIGCHLD, signal.SIG_DFL), (signal.SIGINT, signal.default_int_handler),
                             (signal.SIGTERM, signal.SIG_DFL), (signal.SIGHUP, signal.SIG_DFL)):
            signal.signal(sig, handler)
        request = b""
        while len(request) < length:
            chunk = conn.recv(length - len(request))
            if not chunk:
                os._exit(1)
            request += chunk
        job = json.loads(request)
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
        (enc_in, err_in), (enc_out, err_out), (enc_err, err_err) = job["streams"]
        sys.stdin = open(0, "r", encoding=enc_in, errors=err_in, closefd=False)
        sys.stdout = open(1, "w", encoding=enc_out, errors=err_out, closefd=False,
                          buffering=1 if os.isatty(1) else -1)
        sys.stderr = open(2, "w", encoding=enc_err, errors=err_err, closefd=False, buffering=1)
        os.umask(job["umask"])
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        sys.argv = ["reconciler", *job["argv"]]
        conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
        _fresh_randomness()
        _die_with_the_caller(conn)
        code = _run_command(job["argv"])
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
        except Exception:  # noqa: BLE001
            pass
        os._exit(code)


def _fresh_randomness() -> None:
    """A forked child inherits the server's random generators in the state they had: every command
    would draw the same sequence, and moto draws the emulator's key ids from its generator, so a
    command could make a key whose id an earlier command's key has (and replace it). Each child
    seeds them afresh from the OS, as a process of its own does."""
    import random

    random.seed()
    moto_random = sys.modules.get("moto.moto_api._internal")
    if moto_random is not None and hasattr(moto_random, "mock_random"):
        moto_random.mock_random.seed()


def _run_command(argv: list[str]) -> int:
    from reconciler.cli import cli

    try:
        cli.main(args=argv, prog_name="reconciler")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - as an uncaught exception ends a process
        import traceback

        traceback.print_exc()
        return 1
    return 0


def _die_with_the_caller(conn: socket.socket) -> None:
    """If the caller dies (its socket closes), so does this process, as the command's own would."""
    import threading

    def watch() -> None:
        try:
            while conn.recv(1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    from pathlib import Path

    if sys.path and sys.path[0] in ("", "/", os.getcwd()):
        sys.path.pop(0)  # `python -m` put the working directory ("/") first
    serve(Path(sys.argv[1]))
