"""The proxy configuration file: defaults, fromEnv, and one FILE:LINE:COL message per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.sandbox.xks_proxy import ConfigError, load_config, parse_config
from tests.xks_proxy.helpers import AKID, SECRET, SECRET_64

GOOD = f"""\
uriPath: /example/uri/path/prefix/kms/xks/v1
credentials:
  - accessKeyId: {AKID}
    secretAccessKey: {{fromEnv: XKS_TEST_SECRET}}
keys:
  - id: payments-key-0001
  - id: encrypt-only
    usage: [ENCRYPT]
  - id: neither
    usage: []
  - id: switched-off
    status: DISABLED
  - id: not-aes
    spec: RSA_2048
"""


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "proxy.yaml", environ={} if environ is None else environ)
    return [str(p) for p in info.value.problems]


def test_a_file_with_defaults_and_a_secret_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(GOOD)
    config = load_config(path, environ={"XKS_TEST_SECRET": SECRET_64})
    assert config.uri_path == "/example/uri/path/prefix/kms/xks/v1"
    assert config.credentials[0].secret_access_key.get_secret_value() == SECRET_64
    keys = {k.id: k for k in config.keys}
    assert keys["payments-key-0001"].usage == ("ENCRYPT", "DECRYPT")
    assert (keys["payments-key-0001"].status, keys["payments-key-0001"].spec) == ("ENABLED", "AES_256")
    assert keys["encrypt-only"].usage == ("ENCRYPT",)
    assert keys["neither"].usage == ()
    assert keys["switched-off"].status == "DISABLED"
    assert keys["not-aes"].spec == "RSA_2048"
    assert [m.health_status for m in config.ekm.fleet] == ["ACTIVE"]


def test_secrets_appear_in_no_repr_or_message() -> None:
    config = parse_config(GOOD, environ={"XKS_TEST_SECRET": SECRET_64})
    assert SECRET_64 not in repr(config) and SECRET_64 not in str(config)
    # a secret of the wrong shape is described by its length, never shown
    wrong = "x" * 40
    text = GOOD.replace("{fromEnv: XKS_TEST_SECRET}", wrong)
    messages = problems(text)
    assert messages == ["proxy.yaml:4:22: credentials[0].secretAccessKey: secretAccessKey must be 43-64 characters "
                        "of A-Z, a-z, 0-9, +, / and =; the value given has 40 characters"]
    assert all(wrong not in m for m in messages)


def test_an_unset_variable_is_named_where_it_is_referenced() -> None:
    assert problems(GOOD) == ["proxy.yaml:4:22: credentials[0].secretAccessKey: environment variable "
                              "XKS_TEST_SECRET is not set"]


def test_unknown_fields_are_reported_with_file_line_and_column() -> None:
    text = GOOD.replace("  - id: encrypt-only\n", "  - id: encrypt-only\n    statu: ENABLED\n") + "extra: 1\n"
    assert problems(text, {"XKS_TEST_SECRET": SECRET}) == [
        "proxy.yaml:8:5: unknown field 'statu'; allowed: id, usage, status, spec",
        "proxy.yaml:16:1: unknown field 'extra'; allowed: uriPath, credentials, keys, ekm, latencyMs, "
        "keyMaterialSeed",
    ]


def test_every_problem_is_reported_at_once() -> None:
    text = """\
uriPath: /kms/xks
credentials:
  - accessKeyId: lowercase-is-wrong
    secretAccessKey: %s
keys:
  - id: a
    usage: [ENCRYPT, SIGNN]
    spec: AES256
  - {id: b, status: enabled}
  - id: a
ekm:
  fleet: []
latencyMs: {encrypt: -1}
""" % SECRET
    assert problems(text) == [
        "proxy.yaml:1:10: uriPath: uriPath is at most 128 characters of letters, digits, '/', '-' and '_', "
        "starting with '/' and ending in /kms/xks/v1 (e.g. /example/prefix/kms/xks/v1)",
        "proxy.yaml:3:18: credentials[0].accessKeyId: accessKeyId must be 20-30 characters of A-Z and 2-7; "
        "got 18 characters",
        "proxy.yaml:7:22: keys[0].usage[1]: must be one of ENCRYPT, DECRYPT, SIGN, VERIFY, WRAP, UNWRAP, DERIVE; "
        "got 'SIGNN' (did you mean SIGN?)",
        "proxy.yaml:8:11: keys[0].spec: must be one of AES_256, AES_128, HMAC_256, RSA_2048, RSA_3072, RSA_4096, "
        "ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521; got 'AES256' (did you mean AES_256?)",
        "proxy.yaml:9:21: keys[1].status: must be one of ENABLED, DISABLED; got 'enabled' (did you mean ENABLED?)",
        "proxy.yaml:12:10: ekm.fleet: needs at least 1 entry",
        "proxy.yaml:13:22: latencyMs.encrypt: Input should be greater than or equal to 0",
    ]


@pytest.mark.parametrize("text, expected", [
    (f"uriPath: /kms/xks/v1\ncredentials:\n  - {{accessKeyId: {AKID}, secretAccessKey: {SECRET}}}\n"
     f"  - {{accessKeyId: {AKID}, secretAccessKey: {SECRET}}}\n",
     f"proxy.yaml:3:3: credentials: accessKeyId '{AKID}' is given twice (entries 1 and 2)"),
    (f"uriPath: /kms/xks/v1\ncredentials: [{{accessKeyId: {AKID}, secretAccessKey: {SECRET}}}]\n"
     "keys: [{id: k}, {id: k}]\n",
     "proxy.yaml:3:7: keys: key id 'k' is given twice (entries 1 and 2)"),
    ("uriPath: /kms/xks/v1\ncredentials: []\n", "proxy.yaml:2:14: credentials: needs at least 1 entry"),
    ("uriPath: /kms/xks/v1\n", "proxy.yaml:1:1: missing required field 'credentials'"),
    ("uriPath: /kms/xks/v1\nuriPath: /a/kms/xks/v1\n",
     "proxy.yaml:2:1: duplicate key 'uriPath' (first written on line 1)"),
    ("uriPath: !!python/object:os.system x\n",
     "proxy.yaml:1:10: unsupported YAML tag (a value starting with '!' is read as a tag: quote it; not shown): "
     "the configuration is plain YAML"),
    ("uriPath: [\n", "proxy.yaml:2:1: invalid YAML: while parsing a flow node, expected the node content, "
                     "but found '<stream end>'"),
    ("- a list\n", "proxy.yaml:1:1: the configuration is a mapping with uriPath, credentials and keys"),
    ("", "proxy.yaml:1:1: the configuration is a mapping with uriPath, credentials and keys"),
    (f"uriPath: /kms/xks/v1\ncredentials: [{{accessKeyId: {AKID}, secretAccessKey: {{fromFile: x}}}}]\n",
     "proxy.yaml:2:72: credentials[0].secretAccessKey: secretAccessKey is a string or {fromEnv: VARIABLE}; "
     "got a mapping with fromFile"),
])
def test_one_clear_message_per_mistake(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_an_unreadable_or_oversized_file_is_one_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read the file: No such file or directory"):
        load_config(tmp_path / "missing.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 300_000)
    with pytest.raises(ConfigError, match=r"big\.yaml: the file is larger than 256 KiB"):
        load_config(big)


def test_a_credential_built_in_python_does_not_show_its_secret_when_refused() -> None:
    from pydantic import ValidationError

    from reconciler.sandbox.xks_proxy.config import Credential

    wrong = "not-a-valid-secret-but-still-secret"
    with pytest.raises(ValidationError) as info:
        Credential(accessKeyId=AKID, secretAccessKey=wrong)
    assert "has 35 characters" in str(info.value) and wrong not in str(info.value)
