"""Loading YAML: every problem at once, each at FILE:LINE:COL of the offending node."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.manifest import LoadResult, Problem, load, parse_field_path

VALID = """\
apiVersion: reconciler/v1
kind: KeyStore
metadata:
  name: payments-xks
spec:
  region: us-east-1
  type: EXTERNAL_KEY_STORE
  xks:
    connectivity: PUBLIC_ENDPOINT
    uriEndpoint: https://xks.example.com
    uriPath: /kms/xks/v1
    credential:
      accessKeyId: {fromEnv: XKS_ACCESS_KEY_ID}
      secretAccessKey: {fromEnv: XKS_SECRET_ACCESS_KEY}
  keys:
    - alias: alias/payments-primary
      xksKeyId: ext-key-0001
"""


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, name: str = "m.yaml") -> tuple[Path, LoadResult]:
    path = write(tmp_path, text, name)
    return path, load([path])


def only_problem(result: LoadResult) -> Problem:
    assert len(result.problems) == 1, [str(p) for p in result.problems]
    return result.problems[0]


# ---------------------------------------------------------------------------- the happy path


def test_valid_manifest_loads_with_positions(tmp_path: Path) -> None:
    path, result = load_text(tmp_path, VALID)
    assert result.ok and result.problems == []
    assert result.files == [path]
    [m] = result.manifests
    assert m.name == "payments-xks"
    assert (m.path, m.doc_index, m.line, m.col) == (path, 0, 1, 1)
    assert m.manifest_dir == tmp_path.absolute()
    assert m.root == tmp_path.absolute()
    assert m.region == "us-east-1"
    assert m.source == f"{path}:1"
    assert m.locate("spec.xks.uriPath") == (11, 14)
    assert m.locate("spec.keys[0].xksKeyId") == (17, 17)
    assert m.locate(("spec", "keys", 0, "alias")) == (16, 14)
    # a field left to its default points at its nearest written ancestor
    assert m.locate("spec.deletion.pendingWindowDays") == m.locate("spec")


def test_default_region_applies_only_without_spec_region(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, VALID.replace("  region: us-east-1\n", "").replace("payments-xks", "other")
          .replace("xks.example.com", "xks2.example.com").replace("payments-primary", "other"), "b.yaml")
    result = load([tmp_path], default_region="eu-west-1")
    assert result.ok, [str(p) for p in result.problems]
    assert [m.region for m in result.manifests] == ["us-east-1", "eu-west-1"]
    assert [m.region for m in load([tmp_path]).manifests] == ["us-east-1", None]


def test_multiple_documents_in_one_file(tmp_path: Path) -> None:
    second = VALID.replace("payments-xks", "second").replace("/kms/xks/v1", "/two/kms/xks/v1") \
        .replace("payments-primary", "second")
    path, result = load_text(tmp_path, VALID + "---\n" + second)
    assert result.ok, [str(p) for p in result.problems]
    assert [(m.name, m.doc_index, m.line) for m in result.manifests] == [("payments-xks", 0, 1), ("second", 1, 19)]
    assert result.manifests[1].locate("metadata.name") == (22, 9)


def test_directory_is_loaded_recursively_in_sorted_order(tmp_path: Path) -> None:
    def store(name: str) -> str:
        return VALID.replace("payments-xks", name).replace("xks.example.com", f"{name}.example.com") \
            .replace("payments-primary", name)

    write(tmp_path, store("b"), "b.yaml")
    write(tmp_path, store("a"), "a.yml")
    write(tmp_path, store("c"), "sub/dir/c.yaml")
    write(tmp_path, store("z"), "sub/a.yaml")
    write(tmp_path, "not: a manifest", "notes.txt")
    write(tmp_path, "not: a manifest", ".hidden/x.yaml")
    result = load([tmp_path])
    assert result.ok, [str(p) for p in result.problems]
    assert [m.name for m in result.manifests] == ["a", "b", "z", "c"]
    assert all(m.root == tmp_path.absolute() for m in result.manifests)
    # the same file given twice is loaded once
    assert [m.name for m in load([tmp_path, tmp_path / "b.yaml"]).manifests] == ["a", "b", "z", "c"]


# ---------------------------------------------------------------------------- FILE:LINE:COL of errors


def test_bad_uri_path_points_at_the_value(tmp_path: Path) -> None:
    path, result = load_text(tmp_path, VALID.replace("uriPath: /kms/xks/v1", "uriPath: /foo"))
    problem = only_problem(result)
    assert (problem.file, problem.line, problem.col) == (str(path), 11, 14)
    assert problem.field == "spec.xks.uriPath"
    assert str(problem) == (f"{path}:11:14: spec.xks.uriPath: must end in /kms/xks/v<N> (e.g. /kms/xks/v1), "
                            "optionally after a prefix (/prefix/kms/xks/v1), got '/foo'")


def test_missing_field_points_at_the_parent_mapping(tmp_path: Path) -> None:
    path, result = load_text(tmp_path, VALID.replace("    uriPath: /kms/xks/v1\n", ""))
    problem = only_problem(result)
    assert (problem.line, problem.col) == (8, 3)  # the "xks:" key
    assert "spec.xks: missing required field 'uriPath'" in problem.message


def test_missing_top_level_field_points_at_the_document(tmp_path: Path) -> None:
    text = "# leading comment\n" + VALID[: VALID.index("spec:")]
    path, result = load_text(tmp_path, text)
    problem = only_problem(result)
    assert (problem.line, problem.col) == (2, 1)
    assert problem.message == "missing required field 'spec'"


def test_unknown_field_names_the_allowed_ones(tmp_path: Path) -> None:
    path, result = load_text(tmp_path, VALID.replace("uriEndpoint:", "uriEndPoint:"))
    messages = {(p.line, p.col): p.message for p in result.problems}
    assert messages[(10, 5)] == (
        "spec.xks.uriEndPoint: unknown field 'uriEndPoint' (did you mean 'uriEndpoint'?); allowed fields of "
        "spec.xks: connectivity, uriEndpoint, uriPath, vpcEndpointServiceName, vpcEndpointServiceOwner, credential")
    assert messages[(8, 3)] == ("spec.xks: missing required field 'uriEndpoint' (an EXTERNAL_KEY_STORE store "
                                "needs it)")


def test_unknown_top_level_field(tmp_path: Path) -> None:
    _, result = load_text(tmp_path, VALID + "extra: 1\n")
    problem = only_problem(result)
    assert (problem.line, problem.col) == (18, 1)
    assert problem.message.startswith("extra: unknown field 'extra'; allowed fields: apiVersion, kind, metadata, spec")


def test_wrong_types_are_errors_with_hints(tmp_path: Path) -> None:
    text = VALID.replace("  region: us-east-1\n", "  region: us-east-1\n  account: 111122223333\n  connection: off\n")
    text = text.replace("  xks:\n", "  deletion: 7\n  xks:\n")
    _, result = load_text(tmp_path, text)
    messages = {p.line: p.message for p in result.problems}
    assert messages == {
        7: 'spec.account: expected a string, got a number (111122223333); quote it to make it a string, '
           'e.g. account: "111122223333"',
        8: "spec.connection: must be one of connected, disconnected; got a boolean (false); YAML reads "
           "yes/no/on/off/true/false as booleans, so quote it",
        10: "spec.deletion: expected a mapping, got a number (7)",
    }


def test_string_where_a_mapping_is_expected(tmp_path: Path) -> None:
    _, result = load_text(tmp_path, VALID.replace("      accessKeyId: {fromEnv: XKS_ACCESS_KEY_ID}\n"
                                                  "      secretAccessKey: {fromEnv: XKS_SECRET_ACCESS_KEY}\n",
                                                  "      hello\n").replace("credential:\n", "credential:"))
    problem = only_problem(result)
    # a string where the credential belongs is most likely the secret itself: never shown
    assert problem.message == "spec.xks.credential: expected a mapping, got a string"


def test_literal_suggestion(tmp_path: Path) -> None:
    _, result = load_text(tmp_path, VALID.replace("type: EXTERNAL_KEY_STORE", "type: external_key_store"))
    assert only_problem(result).message == ("spec.type: must be one of EXTERNAL_KEY_STORE, AWS_CLOUDHSM; got a "
                                            "string ('external_key_store') (did you mean EXTERNAL_KEY_STORE?)")


def test_error_in_a_list_item_and_a_tag_key(tmp_path: Path) -> None:
    text = VALID + "      tags:\n        aws:team: x\n    - xksKeyId: ext-key-0001\n"
    _, result = load_text(tmp_path, text)
    got = [(p.line, p.col, p.message.split(":")[0]) for p in result.problems]
    assert got == [(19, 9, "spec.keys[0].tags['aws"), (20, 7, "spec.keys[1].xksKeyId")]
    assert "already uses it" in result.problems[1].message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = VALID.replace("uriPath: /kms/xks/v1", "uriPath: /foo").replace("alias/payments-primary", "alias/aws/x")
    text = text.replace("name: payments-xks", "name: ''")
    _, result = load_text(tmp_path, text)
    assert [(p.line, p.field) for p in result.problems] == [
        (4, "metadata.name"), (11, "spec.xks.uriPath"), (16, "spec.keys[0].alias")]


# ---------------------------------------------------------------------------- YAML-level problems


def test_duplicate_mapping_keys_are_detected(tmp_path: Path) -> None:
    text = VALID.replace("  region: us-east-1\n", "  region: us-east-1\n  region: eu-west-1\n")
    _, result = load_text(tmp_path, text)
    problem = only_problem(result)
    assert (problem.line, problem.col) == (7, 3)
    assert problem.message.startswith("duplicate key 'region' (first at line 6)")
    assert result.manifests == []


def test_duplicate_keys_in_flow_mapping_and_nested(tmp_path: Path) -> None:
    text = VALID.replace("{fromEnv: XKS_ACCESS_KEY_ID}", "{fromEnv: A, fromEnv: B}")
    _, result = load_text(tmp_path, text)
    assert [(p.line, p.col) for p in result.problems] == [(13, 33)]


def test_merge_keys_may_be_overridden_without_a_duplicate_error(tmp_path: Path) -> None:
    text = VALID.replace("  keys:\n    - alias: alias/payments-primary\n      xksKeyId: ext-key-0001\n",
                         "  keys:\n    - &k {alias: alias/a, xksKeyId: k1, description: shared}\n"
                         "    - <<: *k\n      alias: alias/b\n      xksKeyId: k2\n")
    _, result = load_text(tmp_path, text)
    assert result.ok, [str(p) for p in result.problems]
    keys = result.manifests[0].model.spec.keys
    assert [(k.alias, k.xksKeyId, k.description) for k in keys] == [("alias/a", "k1", "shared"),
                                                                   ("alias/b", "k2", "shared")]


@pytest.mark.parametrize(("text", "line", "col", "start"), [
    ("apiVersion: reconciler/v1\nkind: [KeyStore\n", 3, 1, "invalid YAML: expected ',' or ']'"),
    ("a: b\n c: d\n", 2, 3, "invalid YAML: mapping values are not allowed here"),
    ("a:\n\tb: 1\n", 2, 1, "invalid YAML: found character '\\t' that cannot start any token"),
    ("a: 'unterminated\n", 2, 1, "invalid YAML: found unexpected end of stream"),
    ("a: *nowhere\n", 1, 4, "invalid YAML: found an undefined alias: a value that starts with '*'"),
    ("a: \x07\n", 1, 4, "invalid YAML: character '\\x07' is not allowed"),
])
def test_malformed_yaml_reports_the_parser_position(tmp_path: Path, text: str, line: int, col: int,
                                                    start: str) -> None:
    _, result = load_text(tmp_path, text)
    problem = only_problem(result)
    assert (problem.line, problem.col) == (line, col), str(problem)
    assert problem.message.startswith(start), problem.message
    assert "\n" not in problem.message


def test_documents_before_a_syntax_error_are_still_checked(tmp_path: Path) -> None:
    _, result = load_text(tmp_path, VALID.replace("/kms/xks/v1", "/bad") + "---\nkind: [\n")
    assert [p.line for p in result.problems] == [11, 20]


@pytest.mark.parametrize("text", ["", "\n\n", "   \n", "\ufeff"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path, result = load_text(tmp_path, text)
    problem = only_problem(result)
    assert (problem.file, problem.line, problem.col) == (str(path), 1, 1)
    assert problem.message.startswith("the file is empty")


def test_file_with_only_comments(tmp_path: Path) -> None:
    _, result = load_text(tmp_path, "# nothing here\n# yet\n")
    assert only_problem(result).message.startswith("the file holds no YAML document")


def test_empty_document(tmp_path: Path) -> None:
    _, result = load_text(tmp_path, VALID + "---\n# nothing\n---\n" + VALID.replace("payments-xks", "b")
                          .replace("/kms/xks/v1", "/b/kms/xks/v1").replace("payments-primary", "b"))
    problem = only_problem(result)
    assert problem.message.startswith("document 2 is empty")
    assert len(result.manifests) == 2


@pytest.mark.parametrize(("text", "what"), [("- a\n- b\n", "a list"), ("just text\n", "a single value"),
                                            ("42\n", "a single value")])
def test_document_that_is_not_a_mapping(tmp_path: Path, text: str, what: str) -> None:
    _, result = load_text(tmp_path, text)
    problem = only_problem(result)
    assert (problem.line, problem.col) == (1, 1)
    assert problem.message.startswith(f"document 1 is {what}, not a mapping")


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"apiVersion: reconciler/v1\nkind: Key\xffStore\n")
    problem = only_problem(load([path]))
    assert (problem.line, problem.col) == (2, 10)
    assert problem.message == "not valid UTF-8 (byte 0xff); save the file as UTF-8"


def test_utf16_file_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(VALID.encode("utf-16"))
    assert only_problem(load([path])).message.startswith("not valid UTF-8")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + VALID.encode())
    assert load([path]).ok


@pytest.mark.parametrize("tagged", [
    "!!python/object/apply:os.system ['echo pwned']",
    "!!python/object:object {}",
    "!!python/name:os.system",
    "!!python/tuple [1, 2]",
])
def test_python_tags_are_rejected(tmp_path: Path, tagged: str) -> None:
    marker = tmp_path / "pwned"
    text = VALID.replace("  region: us-east-1", f"  region: {tagged.replace('echo pwned', f'touch {marker}')}")
    _, result = load_text(tmp_path, text)
    problem = only_problem(result)
    assert (problem.line, problem.col) == (6, 11)
    assert "is not allowed: manifests are loaded safely" in problem.message
    assert not marker.exists()


@pytest.mark.parametrize("tagged", ["!Ref Something", "!!binary aGVsbG8=", "!!set {a, b}"])
def test_other_tags_are_rejected(tmp_path: Path, tagged: str) -> None:
    _, result = load_text(tmp_path, VALID.replace("  region: us-east-1", f"  region: {tagged}"))
    assert only_problem(result).message.startswith("unsupported YAML tag")


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    text = "\n".join(lines) + "\napiVersion: reconciler/v1\n"
    _, result = load_text(tmp_path, text)
    assert only_problem(result).message.startswith("document 1 has more than 100,000 YAML nodes")


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    _, result = load_text(tmp_path, "a: &a [1, *a]\n")
    assert "refers to the node that contains it" in only_problem(result).message


def test_deep_nesting_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    _, result = load_text(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert result.problems and not result.manifests


def test_unhashable_key(tmp_path: Path) -> None:
    _, result = load_text(tmp_path, "? [a, b]\n: c\n")
    problem = only_problem(result)
    assert problem.line == 1 and problem.message.startswith("invalid YAML")


# ---------------------------------------------------------------------------- apiVersion / kind


def test_wrong_api_version_and_kind(tmp_path: Path) -> None:
    text = VALID.replace("apiVersion: reconciler/v1", "apiVersion: reconciler/v2").replace(
        "kind: KeyStore", "kind: Deployment").replace("/kms/xks/v1", "/bad")
    _, result = load_text(tmp_path, text)
    assert [(p.line, p.col, p.message) for p in result.problems] == [
        (1, 13, "apiVersion: must be 'reconciler/v1', got a string ('reconciler/v2')"),
        (2, 7, "kind: must be 'KeyStore', got a string ('Deployment'); this tool reads only KeyStore documents"),
    ]


def test_missing_api_version(tmp_path: Path) -> None:
    _, result = load_text(tmp_path, VALID.replace("apiVersion: reconciler/v1\n", ""))
    assert only_problem(result).message == "missing required field 'apiVersion' (expected apiVersion: reconciler/v1)"


# ---------------------------------------------------------------------------- paths


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    problem = only_problem(load([missing]))
    assert str(problem) == f"{missing}: no such file or directory"
    assert (problem.line, problem.col) == (None, None)


def test_directory_without_manifests(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hello")
    problem = only_problem(load([tmp_path]))
    assert problem.message.startswith("no manifests found")


def test_no_paths() -> None:
    assert not load([]).ok


def test_problems_from_several_files_are_all_reported(tmp_path: Path) -> None:
    write(tmp_path, "", "a.yaml")
    write(tmp_path, "kind: [\n", "b.yaml")
    write(tmp_path, VALID, "c.yaml")
    result = load([tmp_path, tmp_path / "missing"])
    assert [Path(p.file).name for p in result.problems] == ["a.yaml", "b.yaml", "missing"]
    assert [m.name for m in result.manifests] == ["payments-xks"]


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from reconciler.manifest import loader as loader_module

    path = write(tmp_path, VALID)

    def refusing_open(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied")
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(loader_module, "open", refusing_open, raising=False)
    assert str(only_problem(load([path]))) == f"{path}: cannot read the file: Permission denied"


def test_field_path_parsing() -> None:
    assert parse_field_path("spec.keys[2].tags['a.b']") == ("spec", "keys", 2, "tags", "a.b")


def test_a_constructor_error_does_not_hide_later_documents(tmp_path: Path) -> None:
    _, result = load_text(tmp_path, "a: {<<: 5}\n---\n" + VALID.replace("/kms/xks/v1", "/bad"))
    assert [p.line for p in result.problems] == [1, 13]
    assert result.problems[0].message.startswith("invalid YAML: expected a mapping or list of mappings for merging")


def test_symlink_loop_in_a_directory_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").symlink_to("a.yaml")
    (tmp_path / "a.yaml").symlink_to("b.yaml")
    write(tmp_path, VALID, "c.yaml")
    result = load([tmp_path])
    assert [str(p) for p in result.problems] == [
        f"{tmp_path / name}: a symlink loop (the link leads back to itself); point the link at a manifest file "
        "or remove it" for name in ("a.yaml", "b.yaml")]
    assert [m.name for m in result.manifests] == ["payments-xks"]


def test_symlink_loop_given_as_a_path_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to("a.yaml")
    problem = only_problem(load([tmp_path / "a.yaml", tmp_path]))  # reported once
    assert problem.message.startswith("a symlink loop")
