"""``reconciler demo``: the whole story on the embedded sandbox, with the example manifests.

Every step is a real ``reconciler`` command, printed before it runs, so a newcomer can copy any
of them. The commands run through the same command-line entry point, in this process (starting
an interpreter per command would double the demo's time), inside the scratch workspace with
the demo's environment; the sandbox keeps its state on disk between them exactly as it does
between separate processes. The demo works on a copy of the manifests and never touches AWS.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import click

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "manifests"  # a copy of the repository's manifests/


def _sandbox_env(manifests: Path) -> dict[str, str]:
    """The sandbox-only values ``reconciler sandbox init`` writes for the manifests' variables."""
    from reconciler.manifest.loader import load
    from reconciler.sandbox.fixtures import needs

    return needs(load([str(manifests)])).env


class _Runner:
    def __init__(self, workspace: Path, env: dict[str, str], cli: click.Command) -> None:
        self.workspace = workspace
        self.env = env
        self.cli = cli  # the reconciler group this demo runs in

    def __call__(self, *args: str, expect: tuple[int, ...] = (0,), note: str = "") -> int:
        shown = "reconciler " + " ".join(shlex.quote(a) for a in args)
        click.secho(f"\n$ {shown}", bold=True)
        if note:
            click.secho(f"# {note}", dim=True)
        sys.stdout.flush()
        code = self.invoke(list(args))
        click.secho(f"(exit {code})", dim=True)
        if code not in expect:
            raise click.ClickException(f"'{shown}' exited {code}, expected {expect}; the demo stops here")
        return code

    def invoke(self, args: list[str]) -> int:
        """Run ``reconciler ARGS`` as its entry point would, in the workspace with the demo's
        environment (and none of the caller's AWS settings); return its exit code."""
        cli = self.cli
        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        os.environ.clear()
        os.environ.update(self.env)
        os.chdir(self.workspace)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                returned = cli.main(args=args, prog_name="reconciler", standalone_mode=False)
            code = returned if isinstance(returned, int) else 0  # a usage error returns 1
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
        return code


PROXY_HOST = "xks.payments.example.com"  # manifests/payments-xks.yaml's uriEndpoint


def write_proxy_config(path: Path, credentials: list[tuple[str, str]]) -> None:
    """The demo proxy's configuration: payments-xks's path and keys, and each credential as
    (access key id, the variable holding its secret): no secret is written."""
    lines = ["# the local XKS proxy of payments-xks (docs/xks-proxy.md)", "uriPath: /kms/xks/v1", "credentials:"]
    for akid, variable in credentials:
        lines += [f"  - accessKeyId: {akid}", f"    secretAccessKey: {{fromEnv: {variable}}}"]
    lines += ["keys:", "  - id: payments-key-0001", "  - id: payments-key-0002"]
    path.write_text("\n".join(lines) + "\n")


class _Proxy:
    """``reconciler sandbox xks-proxy serve`` in a process of its own (it runs in the foreground
    until stopped), registered in the demo's sandbox while it runs."""

    def __init__(self, workspace: Path, env: dict[str, str], config: str) -> None:
        args = ["sandbox", "xks-proxy", "serve", "--config", config, "--hostname", PROXY_HOST]
        click.secho("\n$ reconciler " + " ".join(args) + " &", bold=True)
        click.secho("# a real local XKS proxy on a free port, its certificate from the sandbox's CA; the "
                    "sandbox's KMS calls it for the store whose uriEndpoint is https://" + PROXY_HOST, dim=True)
        env = {**env, "RECONCILER_SANDBOX_ACCEL": "off"}  # a long-running command: its own process
        self.process = subprocess.Popen([sys.executable, "-m", "reconciler", *args], cwd=workspace, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        stdin=subprocess.DEVNULL)
        assert self.process.stdout is not None
        for line in self.process.stdout:  # until it has registered itself
            click.echo(line.rstrip())
            if line.startswith("Its certificate") or line.startswith("Error"):
                break
        if self.process.poll() is not None:
            raise click.ClickException("the XKS proxy did not start; the demo stops here")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # it unregisters its host name as it stops
            try:
                self.process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()


def set_uri_path(path: Path, uri_path: str) -> None:
    path.write_text(re.sub(r"^(\s*)uriPath:.*$", rf"\1uriPath: {uri_path}", path.read_text(), count=1, flags=re.M))


def _deletion_days(path: Path) -> tuple[int, int]:
    """The decommissioned manifest's quarantine and waiting period, in days (the demo moves the
    clock past them)."""
    from reconciler.manifest.loader import load

    loaded = load([path])
    if not loaded.manifests:
        raise click.ClickException(f"{path}: " + "; ".join(str(p) for p in loaded.problems))
    deletion = loaded.manifests[0].model.spec.deletion
    return deletion.quarantineDays, deletion.pendingWindowDays


def _check_decommission_choice(path: Path) -> None:
    """Before anything runs: the manifest to decommission must be a valid one of a store the demo
    creates (not one already absent)."""
    from reconciler.manifest.loader import load

    loaded = load([path])
    if not loaded.manifests or loaded.problems:
        raise click.ClickException(f"--decommission {path.name}: not a valid manifest ({loaded.problems[0]})"
                                   if loaded.problems else f"--decommission {path.name}: no manifest in the file")
    if len(loaded.manifests) != 1 or getattr(loaded.manifests[0].model.spec.state, "value",
                                             loaded.manifests[0].model.spec.state) != "present":
        raise click.ClickException(f"--decommission {path.name}: choose the manifest of one store the demo creates "
                                   "(state: present), e.g. payments-xks.yaml")


def set_state_absent(path: Path) -> None:
    text = path.read_text()
    if re.search(r"^\s*state:", text, flags=re.M):  # whatever it says, and a comment after it
        text = re.sub(r"^(\s*)state:.*$", r"\1state: absent", text, count=1, flags=re.M)
    else:
        text = re.sub(r"^(\s*)type:", r"\1state: absent\n\1type:", text, count=1, flags=re.M)
    path.write_text(text)


WORKSPACE_MARKER = ".reconciler-demo"


def check_workspace(workspace: Path) -> None:
    """The demo overwrites manifests/ and resets the sandbox in its workspace: it works only in a
    new or empty directory, or in one an earlier demo made (which holds its marker file)."""
    if not workspace.exists():
        return
    if not workspace.is_dir():
        raise click.ClickException(f"--workspace {workspace} is not a directory")
    if (workspace / WORKSPACE_MARKER).is_file() or not any(workspace.iterdir()):
        return
    raise click.ClickException(f"--workspace {workspace} is not empty and was not made by 'reconciler demo'; the "
                               "demo would overwrite its files and reset the sandbox there. Choose a new or empty "
                               "directory (or leave out --workspace for a temporary one)")


def run_demo(source: Path, workspace: Path | None, store_file: str, cli: click.Command) -> None:
    started = time.monotonic()
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # keep stdout and stderr in order when piped
    scratch = workspace or Path(tempfile.mkdtemp(prefix="reconciler-demo-"))
    check_workspace(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / WORKSPACE_MARKER).write_text("A workspace of 'reconciler demo': it may reset and overwrite it.\n")
    shutil.copytree(source, scratch / "manifests", dirs_exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    variables = _sandbox_env(scratch / "manifests")
    env.update(variables)
    env.update({"RECONCILER_SANDBOX_DIR": str(scratch / ".reconciler" / "sandbox")})
    env.pop("GITHUB_STEP_SUMMARY", None)
    run = _Runner(scratch, env, cli)

    click.secho("reconciler demo: KMS custom key stores, declared in YAML, reconciled on the embedded sandbox",
                bold=True)
    click.echo(f"workspace: {scratch} (a copy of {source}); no AWS account is used.")

    run("sandbox", "reset", note="start from an empty emulated account")
    run("sandbox", "init", "manifests",
        note="the CloudHSM cluster and VPC endpoint service the manifests name (in AWS they exist already), "
             "and .reconciler/sandbox/env.sh with sandbox-only values for their secrets")
    click.secho("# the demo loads .reconciler/sandbox/env.sh into its environment (. .reconciler/sandbox/env.sh): "
                + ", ".join(sorted(variables)), dim=True)
    run("validate", "manifests", note="offline checks: every KMS constraint, every file, every problem at once")
    proxies = _proxy_story(run, scratch, env)
    try:
        run("plan", "--sandbox", "manifests", expect=(2,),
            note="exit 2: there are changes to make; the preflight section checks the proxy KMS will call")
        run("apply", "--sandbox", "--auto-approve", "manifests",
            note="creates the stores, connects them (waiting for CONNECTED), creates keys and aliases; the "
                 "sandbox's KMS calls the proxy for payments-xks (health, GetKeyMetadata)")
        run("plan", "--sandbox", "manifests", note="exit 0: the live state matches the manifests")
        run("status", "--sandbox", "manifests",
            note="every store at a glance: connection, keys by state, managed or not")
        proxies = _rotation_story(run, scratch, env, proxies)
        _decommission_story(run, scratch, store_file)
    finally:
        for proxy in proxies:
            proxy.stop()
    click.secho(f"\nDemo complete in {time.monotonic() - started:.0f}s. Workspace: {scratch}", bold=True)


def _proxy_story(run: _Runner, scratch: Path, env: dict[str, str]) -> list[_Proxy]:
    """A real proxy, a wrong uriPath caught by preflight before KMS is called, the fix."""
    click.secho("\n# An XKS proxy for payments-xks, and a manifest with a wrong uriPath.", bold=True)
    write_proxy_config(scratch / "xks-proxy.yaml", [(env["XKS_ACCESS_KEY_ID"], "XKS_SECRET_ACCESS_KEY")])
    proxies = [_Proxy(scratch, env, "xks-proxy.yaml")]
    manifest = scratch / "manifests" / "payments-xks.yaml"
    set_uri_path(manifest, "/payments/kms/xks/v1")
    click.secho("# manifests/payments-xks.yaml now says uriPath: /payments/kms/xks/v1; the proxy serves /kms/xks/v1",
                dim=True)
    run("preflight", "--sandbox", "manifests", expect=(1,),
        note="caught before KMS is called: KMS would refuse CreateCustomKeyStore with "
             "XksProxyInvalidConfigurationException (a connect would end XKS_PROXY_INVALID_CONFIGURATION)")
    set_uri_path(manifest, "/kms/xks/v1")
    click.secho("# the fix: uriPath: /kms/xks/v1 again", dim=True)
    run("preflight", "--sandbox", "manifests", note="every check passes: DNS, TLS, health, latency, EKM, keys")
    return proxies


def _rotation_story(run: _Runner, scratch: Path, env: dict[str, str], proxies: list[_Proxy]) -> list[_Proxy]:
    """A credential rotation with two credentials live at once."""
    click.secho("\n# Credential rotation: the proxy accepts the old and the new credential at once.", bold=True)
    new_akid, new_secret = "ROTATED" + env["XKS_ACCESS_KEY_ID"][7:], _sandbox_secret()
    env["NEW_XKS_SECRET_ACCESS_KEY"] = new_secret
    write_proxy_config(scratch / "xks-proxy.yaml", [(env["XKS_ACCESS_KEY_ID"], "XKS_SECRET_ACCESS_KEY"),
                                                    (new_akid, "NEW_XKS_SECRET_ACCESS_KEY")])
    click.secho("# xks-proxy.yaml now lists both credentials (the new secret in NEW_XKS_SECRET_ACCESS_KEY); a "
                "second proxy takes over the host name, and the first one stops", dim=True)
    proxies.append(_Proxy(scratch, env, "xks-proxy.yaml"))
    proxies.pop(0).stop()
    run.env.update({"XKS_ACCESS_KEY_ID": new_akid, "XKS_SECRET_ACCESS_KEY": new_secret})
    click.secho("# the demo exports the new credential: XKS_ACCESS_KEY_ID, XKS_SECRET_ACCESS_KEY", dim=True)
    run("plan", "--sandbox", "manifests", expect=(2,),
        note="update_store sends the new credential; preflight checks the proxy accepts it before the update")
    run("apply", "--sandbox", "--auto-approve", "manifests", note="the store now signs with the new credential")
    return proxies


def _sandbox_secret() -> str:
    import base64

    return base64.b64encode(os.urandom(33)).decode()  # 44 characters of A-Z a-z 0-9 + /


def _decommission_story(run: _Runner, scratch: Path, store_file: str) -> None:
    target = scratch / "manifests" / store_file
    set_state_absent(target)
    quarantine, window = _deletion_days(target)
    click.secho(f"\n# Decommission: {store_file} now says 'state: absent'.", bold=True)
    if quarantine:
        run("plan", "--sandbox", "manifests", expect=(2,),
            note=f"disconnect and tag the keys now; their deletion is deferred to the end of the {quarantine}-day "
                 "quarantine, the store's deletion until the keys are gone")
    else:
        run("plan", "--sandbox", "manifests", expect=(2,),
            note="schedule deletion of every key, disconnect, then delete_store deferred until the keys are gone")
    run("apply", "--sandbox", "--auto-approve", "manifests", expect=(1,),
        note="refused: destructive steps need --allow-destroy, and nothing was changed")
    if quarantine:
        run("apply", "--sandbox", "--auto-approve", "--allow-destroy", "manifests", expect=(2,),
            note="exit 2: the store is disconnected and its keys in quarantine (still recoverable): re-run after the date")
        run("sandbox", "advance", f"{quarantine + 1}d", note=f"move the emulator clock past the {quarantine}-day quarantine")
        run("apply", "--sandbox", "--auto-approve", "--allow-destroy", "manifests", expect=(2,),
            note="nobody tried to use the keys during the quarantine: their deletion is scheduled")
    else:
        run("apply", "--sandbox", "--auto-approve", "--allow-destroy", "manifests", expect=(2,),
            note="exit 2: keys pending deletion, store disconnected, delete deferred: re-run after the date")
    run("status", "--sandbox", "manifests", note="the store is DISCONNECTED, its keys PendingDeletion until the date shown")
    run("sandbox", "advance", f"{window + 1}d", note=f"move the emulator clock past the {window}-day waiting period")
    run("apply", "--sandbox", "--auto-approve", "--allow-destroy", "manifests",
        note="the keys are gone, so the store is deleted: converged")
    run("plan", "--sandbox", "manifests", note="nothing left to do")


@click.command(short_help="The whole story on the sandbox, in a minute.")
@click.option("--manifests", "source", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=EXAMPLES, help="Example manifests to copy  [default: the examples shipped with reconciler, "
                                     "the repository's manifests/]")
@click.option("--workspace", type=click.Path(file_okay=False, path_type=Path),
              help="Where to work (default: a new temporary directory).")
@click.option("--decommission", "store_file", default="payments-xks.yaml", show_default=True,
              help="Which manifest (relative to --manifests) the demo decommissions.")
def demo(source: Path, workspace: Path | None, store_file: str) -> None:
    """Walk through plan, apply and a multi-day decommission on the embedded sandbox."""
    if not (source / store_file).is_file():
        raise click.ClickException(f"{source / store_file} not found; pass --decommission with a manifest of "
                                   f"{source}")
    _check_decommission_choice(source / store_file)
    run_demo(source, workspace, store_file, click.get_current_context().find_root().command)
