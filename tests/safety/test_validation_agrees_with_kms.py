"""Item 9: what ``validate`` accepts, the emulator (which follows the KMS API Reference) accepts,
and the other way round, so an apply never fails on a value validation let through.

AliasName (CreateAlias): "The AliasName value must be string of 1-256 characters. It can contain
only alphanumeric characters, forward slashes (/), underscores (_), and dashes (-). The alias name
cannot begin with alias/aws/." The model's pattern also admits ':'; KMS does not.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from reconciler.manifest.constraints import ALIAS
from tests.reliability.harness import world

ALIAS_CHARS = st.sampled_from(list("abcXYZ019:/_-. é"))
aliases = st.one_of(
    st.builds(lambda body: "alias/" + body, st.text(ALIAS_CHARS, min_size=0, max_size=12)),
    st.builds(lambda body: "alias/aws/" + body, st.text(ALIAS_CHARS, min_size=1, max_size=5)),
    st.builds(lambda n: "alias/" + "a" * n, st.integers(245, 255)),
    st.text(ALIAS_CHARS, min_size=1, max_size=10),
)


def manifest_accepts(alias: str) -> bool:
    try:
        ALIAS.validate(alias)
        return True
    except PydanticCustomError:
        return False


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with world(tmp_path_factory.mktemp("alias")) as w:
        key_id = w.kms.create_key()["KeyMetadata"]["KeyId"]
        yield w.kms, key_id


def test_alias_with_a_colon_is_refused_by_both():
    assert not manifest_accepts("alias/team:app")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(alias=aliases)
def test_manifest_alias_validation_agrees_with_the_emulator(emulator, alias):
    kms, key_id = emulator
    try:
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        accepted = True
        kms.delete_alias(AliasName=alias)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] in ("ValidationException", "NotAuthorizedException",
                                                 "InvalidAliasNameException"), exc
        accepted = False
    except Exception as exc:  # botocore's own parameter validation (length) refuses before sending
        assert type(exc).__name__ == "ParamValidationError", exc
        accepted = False
    assert manifest_accepts(alias) == accepted, f"{alias!r}: validate {'accepts' if not accepted else 'refuses'}" \
                                                 f" what the emulator {'accepts' if accepted else 'refuses'}"
