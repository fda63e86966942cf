"""Items 4, 5, 6, 8, 10, 11 of the adversarial round, each through the CLI in a new process:
one clear line and exit 1 (or a warning), never a traceback, never a half-applied run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.helpers import xks_manifest
from tests.reliability.forked import ForkedCli


def clean(run, code: int = 1) -> None:
    assert run.code == code, run.both
    assert "Traceback" not in run.both, run.both


@pytest.fixture
def cli(tmp_path: Path) -> ForkedCli:
    cli = ForkedCli(tmp_path)
    cli.write("m/pay.yaml", xks_manifest())
    return cli


# -- item 4: the journal and the job summary --------------------------------------------------

@pytest.mark.e2e
@pytest.mark.parametrize("journal", ["plans", "/dev/full", "m/pay.yaml/journal.jsonl"])
def test_an_unusable_journal_refuses_before_the_first_step(cli, journal):
    (cli.workdir / "plans").mkdir(exist_ok=True)
    run = cli("apply", "--sandbox", "--auto-approve", "--journal", journal, "m")
    clean(run)
    assert "--journal" in run.err and "--no-journal" in run.err
    assert "create_store" not in run.out.split("Apply")[-1]  # nothing ran
    assert cli("plan", "--sandbox", "m").code == 2  # nothing was created


@pytest.mark.e2e
def test_journal_in_a_missing_directory_is_created(cli):
    run = cli("apply", "--sandbox", "--auto-approve", "--journal", "deep/er/journal.jsonl", "m")
    clean(run, 0)
    assert (cli.workdir / "deep/er/journal.jsonl").stat().st_size > 0


def test_a_journal_write_that_fails_mid_run_is_a_warning_not_a_traceback(tmp_path):
    from reconciler.apply.journal import Journal

    warnings: list[str] = []
    journal = Journal(tmp_path / "j.jsonl", warn=warnings.append)
    journal.write({"event": "run-start"})

    class Full:
        def write(self, _text):
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

        def close(self):
            pass

    journal._fh = Full()
    journal.write({"event": "ok"})
    journal.write({"event": "ok"})  # the second failure says nothing more
    journal.close()
    assert len(warnings) == 1 and "No space left on device" in warnings[0]


def test_reading_the_previous_run_from_a_device_is_bounded():
    from reconciler.apply.journal import interrupted_run

    assert interrupted_run("/dev/zero") is None  # would never end if read whole


@pytest.mark.e2e
def test_an_unwritable_step_summary_is_a_warning(cli):
    run = cli("plan", "--sandbox", "m", env={"GITHUB_STEP_SUMMARY": str(cli.workdir / "no" / "such" / "dir")})
    clean(run, 2)
    assert "Warning: cannot append the plan to $GITHUB_STEP_SUMMARY" in run.err


# -- item 5: demo --workspace -----------------------------------------------------------------

@pytest.mark.e2e
def test_demo_refuses_a_workspace_it_did_not_make(cli):
    (cli.workdir / "mine").mkdir()
    (cli.workdir / "mine" / "notes.txt").write_text("precious")
    examples = Path(__file__).resolve().parents[2] / "manifests"
    run = cli("demo", "--manifests", str(examples), "--workspace", "mine")
    clean(run)
    assert "not empty and was not made by 'reconciler demo'" in run.err
    assert (cli.workdir / "mine" / "notes.txt").read_text() == "precious"
    assert sorted(p.name for p in (cli.workdir / "mine").iterdir()) == ["notes.txt"]


# -- item 6: a saved plan is bound to its target ----------------------------------------------

@pytest.mark.e2e
def test_a_sandbox_plan_is_refused_against_another_target(cli):
    run = cli("plan", "--sandbox", "m", "--out", "plans/plan.json")
    clean(run, 2)
    target = json.loads((cli.workdir / "plans/plan.json").read_text())["target"]
    assert target["account"] == "123456789012" and target["sandbox"] and target["region"] == "us-east-1"
    other = cli("apply", "--sandbox", "--sandbox-dir", "elsewhere", "plans/plan.json")
    clean(other)
    assert "was made for the embedded sandbox in" in other.err and "nothing was changed" in other.err
    # a served endpoint with the same (moto) account is another target too
    served = cli("apply", "--endpoint-url", "http://127.0.0.1:9", "plans/plan.json",
                 env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"})
    assert served.code == 1 and "Traceback" not in served.both
    assert cli("apply", "--sandbox", "plans/plan.json").code == 0


def test_check_target_compares_account_region_endpoint_and_sandbox():
    from reconciler.errors import RefusedError
    from reconciler.plan.model import Plan
    from reconciler.apply.guards import check_target

    here = {"account": "111122223333", "region": "us-east-1", "endpoint": None, "sandbox": None}
    plan = Plan(region="us-east-1", steps=(), target=dict(here))
    check_target(plan, "p.json", dict(here))
    for field, value in (("account", "444455556666"), ("region", "eu-west-1"),
                         ("endpoint", "http://localhost:4566"), ("sandbox", "/tmp/sb")):
        with pytest.raises(RefusedError, match="nothing was changed"):
            check_target(plan, "p.json", {**here, field: value})


# -- item 8: lone surrogates --------------------------------------------------------------------

@pytest.mark.e2e
def test_a_lone_surrogate_is_a_validation_problem(cli):
    cli.write("m/pay.yaml", xks_manifest().replace("Payments data key", '"Payments \\ud800 key"'))
    for args in (["validate", "m"], ["plan", "--sandbox", "m"], ["apply", "--sandbox", "--auto-approve", "m"]):
        run = cli(*args)
        clean(run)
        assert "lone UTF-16 surrogate" in run.err and "pay.yaml:" in run.err


# -- item 10: tracebacks turned into one line ---------------------------------------------------

@pytest.mark.e2e
@pytest.mark.parametrize("args, env, expect", [
    (["plan", "--sandbox", "--region", "moon-1", "m"], {}, "--region 'moon-1'"),
    (["status", "--sandbox", "--region", "../../x"], {}, "--region '../../x'"),
    (["plan", "--sandbox", "m"], {"AWS_REGION": "us-east-9"}, "AWS_REGION 'us-east-9'"),
    (["status", "--endpoint-url", "notaurl", "--region", "us-east-1"], {}, "is not an endpoint URL"),
    (["plan", "--sandbox", "m"], {"RECONCILER_KMS_QUOTAS": "DescribeKey=fast"}, "RECONCILER_KMS_QUOTAS"),
    (["sandbox", "advance", "99999999999d"], {}, "too long"),
    (["plan", "--sandbox", "m", "--out", "/proc/version"], {}, "cannot write the plan to /proc/version"),
    (["sandbox", "status", "--endpoint-url", "notaurl"], {}, "--endpoint-url 'notaurl' is not a sandbox server's URL"),
    (["sandbox", "status", "--endpoint-url", "localhost:4566"], {}, "'localhost:4566' is not a sandbox server's URL"),
    (["sandbox", "advance", "1d", "--endpoint-url", "notaurl"], {}, "use http://HOST:PORT"),
    (["sandbox", "init", "--endpoint-url", "notaurl", "m"], {}, "--endpoint-url 'notaurl' is not"),
    (["sandbox", "fault", "--endpoint-url", "http://h:port", "--clear"], {}, "'http://h:port' is not"),
    (["sandbox", "seed-cluster", "--region", "us-east1"], {}, "--region 'us-east1' must be an AWS region that this "
                                                              "installation of botocore knows, such as us-east-1 (did "
                                                              "you mean us-east-1?)"),
    (["sandbox", "seed-endpoint-service", "--region", "xx"], {}, "--region 'xx' must be an AWS region"),
    (["plan", "--sandbox", "m", "--out", "m/pay.yaml/x.json"], {}, "cannot write the plan to m/pay.yaml/x.json "
                                                                    "(m/pay.yaml is not a directory)"),
    (["sandbox", "serve", "--host", "256.1.1.1", "--port", "0"], {}, "not an address of this machine); choose another "
                                                                     "--host, e.g. 127.0.0.1"),
])
def test_bad_values_are_one_line(cli, args, env, expect):
    run = cli(*args, env=env)
    clean(run)
    assert expect in run.err
    assert run.err.startswith("Error: ") and len(run.err.splitlines()) == 1, run.err


@pytest.mark.e2e
def test_an_xks_proxy_with_a_bad_endpoint_url_is_refused_before_it_listens(cli):
    cli.write("proxy.yaml", "uriPath: /kms/xks/v1\ncredentials:\n  - accessKeyId: AKIAXKSPROXYEXAMPLE2\n"
                            "    secretAccessKey: {fromEnv: XKS_SECRET_ACCESS_KEY}\nkeys:\n  - id: k\n")
    run = cli("sandbox", "xks-proxy", "serve", "--config", "proxy.yaml", "--hostname", "h", "--endpoint-url", "notaurl",
              "--port", "0", timeout=30)
    clean(run)
    assert run.err == ("Error: --endpoint-url 'notaurl' is not a sandbox server's URL; use http://HOST:PORT, e.g. "
                       "http://127.0.0.1:4566 (the address 'reconciler sandbox serve' prints)\n")
    assert "listening" not in run.out


def test_the_sandbox_refuses_to_seed_in_an_unknown_region(tmp_path):
    from reconciler.sandbox.control import ClusterSeed, ControlError, EndpointServiceSeed, control_for
    from reconciler.sandbox.embedded import EmbeddedSandbox

    with EmbeddedSandbox(tmp_path / "sb"):
        control = control_for(None, str(tmp_path / "sb"))
        with pytest.raises(ControlError, match="region 'us-east1' is not one the sandbox emulates CloudHSM clusters in"):
            control.seed_cluster(ClusterSeed(region="us-east1"))
        with pytest.raises(ControlError, match="region 'xx' is not one the sandbox emulates VPC endpoint services in"):
            control.seed_endpoint_service(EndpointServiceSeed(region="xx"))


@pytest.mark.e2e
def test_an_unknown_spec_region_fails_validate(cli):
    cli.write("m/pay.yaml", xks_manifest().replace("region: us-east-1", "region: us-east-9"))
    run = cli("validate", "m")
    clean(run)
    assert "spec.region" in run.err and "did you mean us-east-" in run.err


# -- item 11: special and large files ------------------------------------------------------------

@pytest.mark.e2e
def test_a_fifo_named_yaml_does_not_hang_validate(cli):
    os.mkfifo(cli.workdir / "m" / "pipe.yaml")
    run = cli("validate", "m", timeout=20)
    clean(run)
    assert "pipe.yaml: not a regular file" in run.err


@pytest.mark.e2e
def test_a_huge_manifest_is_refused_at_once(cli):
    (cli.workdir / "m" / "big.yaml").write_text("# filler\n" * (11 * 1024 * 1024 // 9))
    run = cli("validate", "m", timeout=20)
    clean(run)
    assert "larger than the 1024 KiB a manifest file may be" in run.err
    assert "aliases" not in run.err


@pytest.mark.e2e
def test_a_huge_secret_file_is_refused_without_reading_it(cli):
    cli.write("m/pay.yaml", xks_manifest().replace("{fromEnv: XKS_SECRET_ACCESS_KEY}", "{fromFile: big.key}"))
    with open(cli.workdir / "m" / "big.key", "wb") as fh:
        fh.truncate(300 * 1024 * 1024)  # sparse: 300 MB to read, nothing on disk
    run = cli("validate", "--check-secrets", "m", timeout=20)
    clean(run)
    assert "larger than 64 KiB" in run.err


@pytest.mark.e2e
def test_seed_cluster_twice_gives_two_clusters_and_a_taken_id_is_left_alone(cli):
    first, second = cli("sandbox", "seed-cluster"), cli("sandbox", "seed-cluster")
    clean(first, 0), clean(second, 0)
    assert first.out.strip() != second.out.strip()
    again = cli("sandbox", "seed-cluster", "--cluster-id", first.out.strip())
    clean(again, 0)  # idempotent, like mkdir -p: the cluster (and its certificates) stay as they were
    assert "exists already; it was left as it is" in again.err


@pytest.mark.e2e
def test_serve_on_a_port_in_use_is_one_line(cli):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        run = cli("sandbox", "serve", "--port", port, timeout=30)
    clean(run)
    assert run.err == f"Error: cannot listen on 127.0.0.1:{port} (Address already in use); choose another --port\n"
