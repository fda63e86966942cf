"""Secret references: refused inline, resolved late, never shown."""

from __future__ import annotations

import json
import logging
import pickle
import textwrap
from pathlib import Path

import pytest

from reconciler.manifest import SecretError, SecretRef, SensitiveStr, load, resolve_secret
from reconciler.manifest.loader import check_secrets
from reconciler.manifest.constraints import KEY_STORE_PASSWORD, XKS_SECRET_ACCESS_KEY

SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY0123456"  # 45 base64 characters
ACCESS_KEY_ID = "AKIA234567ABCDEFGHIJ"

XKS = """\
apiVersion: reconciler/v1
kind: KeyStore
metadata:
  name: s
spec:
  type: EXTERNAL_KEY_STORE
  xks:
    connectivity: PUBLIC_ENDPOINT
    uriEndpoint: https://xks.example.com
    uriPath: /kms/xks/v1
    credential:
      accessKeyId: ACCESS
      secretAccessKey: SECRET
"""


def manifest_text(access: str = "{fromEnv: T_ACCESS}", secret: str = "{fromEnv: T_SECRET}") -> str:
    return XKS.replace("ACCESS\n", access + "\n").replace("SECRET\n", secret + "\n")


def load_one(tmp_path: Path, text: str, name: str = "m.yaml"):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    result = load([path.parent])
    assert result.ok, [str(p) for p in result.problems]
    return result.manifests[0]


# ---------------------------------------------------------------------------- inline secrets


@pytest.mark.parametrize("inline", [SECRET, f'"{SECRET}"', "12345678901234567890123456789012345678901234",
                                    "[a, b]"])
def test_inline_secret_access_key_is_refused_without_echo(tmp_path: Path, inline: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(manifest_text(secret=inline))
    result = load([path])
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert (problem.line, problem.col) == (13, 24)
    assert problem.message.startswith("spec.xks.credential.secretAccessKey: inline secrets are not allowed")
    assert "{fromEnv: NAME} or {fromFile: PATH}" in problem.message
    for shown in (SECRET, "1234567890", "[a, b]", "'a'"):
        assert shown not in str(problem)


def test_inline_keystore_password_is_refused_without_echo(tmp_path: Path) -> None:
    text = """\
    apiVersion: reconciler/v1
    kind: KeyStore
    metadata: {name: h}
    spec:
      type: AWS_CLOUDHSM
      cloudHsm:
        clusterId: cluster-jxhlf7644ne
        trustAnchorCertificate: {fromFile: ca.crt}
        keyStorePassword: hunter2hunter2
    """
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(text))
    [problem] = load([path]).problems
    assert (problem.line, problem.col) == (9, 23)
    assert "inline secrets are not allowed" in problem.message and "hunter2" not in problem.message


@pytest.mark.parametrize("inline", ["*Hunter2-kmsuser", "!Hunter2-kmsuser", "!!Hunter2-kmsuser"])
def test_an_inline_secret_yaml_reads_as_an_alias_or_a_tag_is_not_echoed(tmp_path: Path, inline: str) -> None:
    """A password that starts with '*' or '!' is read by YAML as an alias or a tag; PyYAML's
    messages quote it. The problem says what happened, without the text."""
    path = tmp_path / "m.yaml"
    path.write_text(manifest_text(secret=inline))
    problems = load([path]).problems
    assert problems and all("Hunter2" not in str(p) for p in problems), [str(p) for p in problems]
    assert any("quote it" in p.message for p in problems)


def test_a_string_where_the_credential_mapping_belongs_is_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(XKS.replace("    credential:\n      accessKeyId: ACCESS\n      secretAccessKey: SECRET\n",
                                f"    credential: {SECRET}\n"))
    [problem] = load([path]).problems
    assert "spec.xks.credential: expected a mapping, got a string" in problem.message
    assert SECRET[:10] not in str(problem)


def test_bad_literal_access_key_id_is_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(manifest_text(access="lowercase-access-key-id-value"))
    [problem] = load([path]).problems
    assert "must be 20 to 30 characters of A-Z and 2-7" in problem.message
    assert "lowercase" not in problem.message


def test_bad_references_are_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(manifest_text(secret=f"{{fromEnv: '{SECRET}+/'}}"))
    [problem] = load([path]).problems
    assert "must be an environment variable name" in problem.message and SECRET not in problem.message


# ---------------------------------------------------------------------------- resolving


def test_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_SECRET", SECRET)
    value = resolve_secret(SecretRef(fromEnv="T_SECRET"), manifest_dir=tmp_path, root=tmp_path)
    assert isinstance(value, str) and isinstance(value, SensitiveStr)
    assert value.reveal() == SECRET and value.get_secret_value() == SECRET
    assert type(value.reveal()) is str


def test_missing_env_var_names_it_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("T_NOPE", raising=False)
    with pytest.raises(SecretError) as info:
        resolve_secret(SecretRef(fromEnv="T_NOPE"), manifest_dir=tmp_path, root=tmp_path, field="spec.x")
    assert str(info.value) == ("spec.x: environment variable T_NOPE is not set; export T_NOPE with the value "
                               "before running, or change the reference")
    monkeypatch.setenv("T_NOPE", "")
    with pytest.raises(SecretError, match="is set but empty"):
        resolve_secret(SecretRef(fromEnv="T_NOPE"), manifest_dir=tmp_path, root=tmp_path)


def test_from_file_relative_to_the_manifest_dir(tmp_path: Path) -> None:
    sub = tmp_path / "stores"
    (sub / "secrets").mkdir(parents=True)
    (sub / "secrets" / "xks.txt").write_text(SECRET + "\n")
    value = resolve_secret(SecretRef(fromFile="secrets/xks.txt"), manifest_dir=sub, root=tmp_path)
    assert value.reveal() == SECRET
    (sub / "crlf.txt").write_bytes(SECRET.encode() + b"\r\n")
    assert resolve_secret(SecretRef(fromFile="crlf.txt"), manifest_dir=sub, root=tmp_path).reveal() == SECRET
    # only one newline is dropped: a value with spaces or inner newlines stays as written
    (sub / "spaces.txt").write_text(" pass word \n\n")
    assert resolve_secret(SecretRef(fromFile="spaces.txt"), manifest_dir=sub, root=tmp_path).reveal() == " pass word \n"


def test_from_file_outside_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    root.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET)
    ref = SecretRef(fromFile="../outside.txt")
    with pytest.raises(SecretError) as info:
        resolve_secret(ref, manifest_dir=root, root=root)
    message = str(info.value)
    assert "outside the manifests root" in message and "'../outside.txt'" in message and SECRET not in message
    assert resolve_secret(ref, manifest_dir=root, root=root, allow_outside_root=True).reveal() == SECRET
    with pytest.raises(SecretError, match="outside the manifests root"):
        resolve_secret(SecretRef(fromFile=str(outside)), manifest_dir=root, root=root)


def test_from_file_symlink_escaping_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    root.mkdir()
    (tmp_path / "real.txt").write_text(SECRET)
    (root / "link.txt").symlink_to(tmp_path / "real.txt")
    with pytest.raises(SecretError, match="resolves to .*real.txt, outside the manifests root"):
        resolve_secret(SecretRef(fromFile="link.txt"), manifest_dir=root, root=root)
    # a symlink that stays inside the root is fine
    (root / "inside.txt").write_text(SECRET)
    (root / "link2.txt").symlink_to(root / "inside.txt")
    assert resolve_secret(SecretRef(fromFile="link2.txt"), manifest_dir=root, root=root).reveal() == SECRET


def test_from_file_problems(tmp_path: Path) -> None:
    def fails(path: str) -> str:
        with pytest.raises(SecretError) as info:
            resolve_secret(SecretRef(fromFile=path), manifest_dir=tmp_path, root=tmp_path)
        return str(info.value)

    assert "does not exist" in fails("missing.txt")
    (tmp_path / "d").mkdir()
    assert "is not a regular file" in fails("d")
    (tmp_path / "empty.txt").write_text("\n")
    assert "is empty" in fails("empty.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe")
    assert "is not UTF-8" in fails("bin.txt")


def test_value_format_is_checked_without_showing_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_SECRET", "short-secret")
    with pytest.raises(SecretError) as info:
        resolve_secret(SecretRef(fromEnv="T_SECRET"), manifest_dir=tmp_path, root=tmp_path,
                       field="spec.xks.credential.secretAccessKey", check=XKS_SECRET_ACCESS_KEY)
    message = str(info.value)
    assert "short-secret" not in message
    assert "environment variable T_SECRET" in message and "43 to 64 characters" in message
    monkeypatch.setenv("T_PASS", "123456")
    with pytest.raises(SecretError, match="at least 7 characters"):
        resolve_secret(SecretRef(fromEnv="T_PASS"), manifest_dir=tmp_path, root=tmp_path, check=KEY_STORE_PASSWORD)


def test_loaded_manifest_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = load_one(tmp_path, manifest_text(access=ACCESS_KEY_ID, secret="{fromFile: secret.txt}"))
    (tmp_path / "secret.txt").write_text(SECRET)
    assert m.resolve("spec.xks.credential.accessKeyId").reveal() == ACCESS_KEY_ID
    assert m.resolve("spec.xks.credential.secretAccessKey").reveal() == SECRET
    assert m.resolve("spec.cloudHsm.keyStorePassword") is None
    (tmp_path / "secret.txt").write_text("too short")
    with pytest.raises(SecretError) as info:
        m.resolve("spec.xks.credential.secretAccessKey")
    assert str(info.value) == (f"{m.path}:13:24: spec.xks.credential.secretAccessKey: the value in file "
                               "'secret.txt' must be 43 to 64 characters of A-Z, a-z, 0-9, '/', '+' and '=' "
                               "(value not shown)")
    with pytest.raises(ValueError):
        m.resolve("spec.xks.uriPath")


def test_check_secrets_reports_each_unresolvable_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("T_ACCESS", raising=False)
    monkeypatch.setenv("T_SECRET", SECRET)
    (tmp_path / "outside.txt").write_text("not a valid secret access key")
    m = load_one(tmp_path / "root", manifest_text(secret="{fromFile: ../outside.txt}"))
    problems = check_secrets([m])
    assert [(p.line, p.field) for p in problems] == [(12, "spec.xks.credential.accessKeyId"),
                                                     (13, "spec.xks.credential.secretAccessKey")]
    assert "T_ACCESS is not set" in problems[0].message
    assert "outside the manifests root" in problems[1].message
    monkeypatch.setenv("T_ACCESS", ACCESS_KEY_ID)
    assert check_secrets([m], allow_outside_root=True)[0].message.endswith("(value not shown)")


# ---------------------------------------------------------------------------- the wrapper type


def test_sensitive_str_never_shows_itself(caplog: pytest.LogCaptureFixture) -> None:
    value = SensitiveStr(SECRET)
    assert str(value) == repr(value) == f"{value}" == "%s" % value == "(sensitive)"  # noqa: UP031
    assert f"{value!r:>5}" == "(sensitive)"
    assert SECRET not in repr([value]) and SECRET not in repr({"k": value})
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("value=%s %r", value, value)
    assert SECRET not in caplog.text
    try:
        raise RuntimeError(f"failed with {value}")
    except RuntimeError as exc:
        assert SECRET not in str(exc)
    with pytest.raises(TypeError):
        pickle.dumps(value)


def test_sensitive_str_reaches_botocore_serialisation_intact() -> None:
    # botocore's JSON protocol serialises with json.dumps, which reads the characters themselves
    assert json.loads(json.dumps({"RawSecretAccessKey": SensitiveStr(SECRET)}))["RawSecretAccessKey"] == SECRET
    assert len(SensitiveStr(SECRET)) == len(SECRET)
