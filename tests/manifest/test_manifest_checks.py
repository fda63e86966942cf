"""Cross-manifest rules: uniqueness per account and region, reported at the second occurrence."""

from __future__ import annotations

from pathlib import Path

from reconciler.manifest import LoadResult, load


def xks(name: str, *, endpoint: str = "https://xks.example.com", path: str = "/kms/xks/v1",
        connectivity: str = "PUBLIC_ENDPOINT", service: str | None = None, region: str | None = "us-east-1",
        account: str | None = None, keys: str = "", state: str = "present") -> str:
    lines = ["apiVersion: reconciler/v1", "kind: KeyStore", "metadata:", f"  name: {name}", "spec:"]
    if region:
        lines.append(f"  region: {region}")
    if account:
        lines.append(f'  account: "{account}"')
    lines += ["  type: EXTERNAL_KEY_STORE", f"  state: {state}", "  xks:", f"    connectivity: {connectivity}",
              f"    uriEndpoint: {endpoint}", f"    uriPath: {path}"]
    if service:
        lines.append(f"    vpcEndpointServiceName: {service}")
    lines += ["    credential:", "      accessKeyId: {fromEnv: A}", "      secretAccessKey: {fromEnv: S}"]
    if keys:
        lines += ["  keys:", *[f"    {line}" for line in keys.splitlines()]]
    return "\n".join(lines) + "\n"


def hsm(name: str, cluster: str = "cluster-jxhlf7644ne", keys: str = "- alias: alias/records") -> str:
    return (f"apiVersion: reconciler/v1\nkind: KeyStore\nmetadata:\n  name: {name}\nspec:\n  region: us-east-1\n"
            f"  type: AWS_CLOUDHSM\n  cloudHsm:\n    clusterId: {cluster}\n"
            "    trustAnchorCertificate: {fromFile: ca.crt}\n    keyStorePassword: {fromEnv: P}\n"
            "  keys:\n" + "".join(f"    {line}\n" for line in keys.splitlines()))


def load_docs(tmp_path: Path, *docs: str, default_region: str | None = None) -> LoadResult:
    for i, text in enumerate(docs):
        (tmp_path / f"{i:02d}.yaml").write_text(text)
    return load([tmp_path], default_region=default_region)


def messages(result: LoadResult) -> list[str]:
    return [str(p) for p in result.problems]


def test_distinct_stores_have_no_problems(tmp_path: Path) -> None:
    result = load_docs(tmp_path, xks("a"), xks("b", path="/b/kms/xks/v1"), hsm("c"),
                       xks("d", endpoint="https://vpc.example.com", connectivity="VPC_ENDPOINT_SERVICE",
                           service="com.amazonaws.vpce.us-east-1.vpce-svc-1"))
    assert result.ok, messages(result)


def test_duplicate_store_name_points_at_second_and_names_first(tmp_path: Path) -> None:
    result = load_docs(tmp_path, xks("same"), xks("same", path="/other/kms/xks/v1"))
    [problem] = result.problems
    assert (problem.file, problem.line, problem.col) == (str(tmp_path / "01.yaml"), 4, 9)
    assert problem.message == (f"metadata.name: store name 'same' is already used by store 'same' at "
                               f"{tmp_path / '00.yaml'}:4 (account (any), region us-east-1); a store name is "
                               "unique per account and region")


def test_duplicate_name_within_one_file(tmp_path: Path) -> None:
    result = load_docs(tmp_path, xks("same") + "---\n" + xks("same", path="/other/kms/xks/v1"))
    [problem] = result.problems
    assert problem.line == 16 + 4 and f"{tmp_path / '00.yaml'}:4 " in problem.message  # 15 lines, ---, doc 2


def test_same_name_in_other_region_or_account_is_fine(tmp_path: Path) -> None:
    assert load_docs(tmp_path, xks("same"), xks("same", region="eu-west-1")).ok
    other = tmp_path / "other"
    other.mkdir()
    assert load_docs(other, xks("same", account="111122223333"), xks("same", account="444455556666")).ok


def test_default_region_groups_manifests_without_region(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    # without a default region the region is unknown: both fall into one group
    assert not load_docs(a, xks("same", region=None), xks("same", region=None, path="/x/kms/xks/v1")).ok
    # a default region puts the manifest without region next to the one that names it
    b = tmp_path / "b"
    b.mkdir()
    result = load_docs(b, xks("same", region="us-east-1"), xks("same", region=None, path="/x/kms/xks/v1"),
                       default_region="us-east-1")
    assert len(result.problems) == 1
    c = tmp_path / "c"
    c.mkdir()
    assert load_docs(c, xks("same", region="us-east-1"), xks("same", region=None, path="/x/kms/xks/v1"),
                     default_region="eu-west-1").ok


def test_duplicate_endpoint_and_path(tmp_path: Path) -> None:
    result = load_docs(tmp_path, xks("a"), xks("b", endpoint="https://XKS.example.com"))
    [problem] = result.problems
    assert problem.field == "spec.xks.uriPath" and problem.line == 12
    assert "XksProxyUriInUseException" in problem.message and f"{tmp_path / '00.yaml'}:12" in problem.message


def test_public_store_may_not_share_endpoint_with_vpc_store(tmp_path: Path) -> None:
    vpc = xks("v", connectivity="VPC_ENDPOINT_SERVICE", service="com.amazonaws.vpce.us-east-1.vpce-svc-1",
              path="/v/kms/xks/v1")
    result = load_docs(tmp_path, vpc, xks("p"))
    [problem] = result.problems
    assert problem.field == "spec.xks.uriEndpoint" and problem.file.endswith("01.yaml")
    assert "a PUBLIC_ENDPOINT store cannot share its endpoint with a VPC_ENDPOINT_SERVICE store" in problem.message


def test_public_stores_may_share_an_endpoint_with_different_paths(tmp_path: Path) -> None:
    assert load_docs(tmp_path, xks("a"), xks("b", path="/b/kms/xks/v1")).ok


def test_each_vpc_store_needs_its_own_endpoint_and_service(tmp_path: Path) -> None:
    svc = "com.amazonaws.vpce.us-east-1.vpce-svc-1"
    result = load_docs(tmp_path,
                       xks("v1", connectivity="VPC_ENDPOINT_SERVICE", service=svc),
                       xks("v2", connectivity="VPC_ENDPOINT_SERVICE", service=svc, path="/two/kms/xks/v1"))
    assert sorted(p.field or "" for p in result.problems) == ["spec.xks.uriEndpoint", "spec.xks.vpcEndpointServiceName"]
    assert any("XksProxyVpcEndpointServiceInUseException" in m for m in messages(result))
    assert any("own private DNS name" in m for m in messages(result))


def test_duplicate_cloudhsm_cluster(tmp_path: Path) -> None:
    result = load_docs(tmp_path, hsm("a"), hsm("b", keys="- alias: alias/other"))
    [problem] = result.problems
    assert problem.field == "spec.cloudHsm.clusterId" and problem.line == 9
    assert "CloudHsmClusterInUseException" in problem.message


def test_duplicate_alias_across_stores(tmp_path: Path) -> None:
    result = load_docs(tmp_path, xks("a", keys="- xksKeyId: k1\n  alias: alias/shared"),
                       hsm("b", keys="- alias: alias/x\n- alias: alias/shared"))
    [problem] = result.problems
    assert problem.field == "spec.keys[1].alias" and problem.line == 14
    assert f"alias 'alias/shared' is already used by store 'a' at {tmp_path / '00.yaml'}:18 " in problem.message


def test_same_xks_key_id_in_two_stores_is_fine(tmp_path: Path) -> None:
    assert load_docs(tmp_path, xks("a", keys="- xksKeyId: k1"), xks("b", path="/b/kms/xks/v1", keys="- xksKeyId: k1")).ok


def test_absent_store_keeps_its_name_but_frees_nothing_else(tmp_path: Path) -> None:
    # decommissioning an old store while creating its replacement on the same endpoint is allowed
    # (the planner orders it); the name still has to differ
    result = load_docs(tmp_path, xks("old", state="absent", keys="- xksKeyId: k\n  alias: alias/a"),
                       xks("new", keys="- xksKeyId: k\n  alias: alias/a"))
    assert result.ok, messages(result)
    again = tmp_path / "again"
    again.mkdir()
    assert not load_docs(again, xks("old", state="absent"), xks("old", path="/n/kms/xks/v1")).ok
