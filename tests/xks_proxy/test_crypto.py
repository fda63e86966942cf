"""AES-GCM and the ciphertext data integrity value, against the specification's own example."""

from __future__ import annotations

import base64

import pytest

from reconciler.sandbox.xks_proxy import crypto


def test_the_integrity_value_of_the_specification_example() -> None:
    sealed = crypto.Sealed(ciphertext=base64.b64decode("ghxkK1txeDNn3q8Y"),
                           iv=base64.b64decode("HMrlRw85cAJUd5Ax"),
                           tag=base64.b64decode("vBxN2ncH1oEkR8WVXpmyYQ=="),
                           metadata=base64.b64decode("a2V5X3ZlcnNpb249MQ=="))
    aad = b"project=nile,department=marketing"
    assert base64.b64encode(crypto.integrity_value(aad, sealed)).decode() == \
        "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="


def test_the_gcm_additional_data_carries_both_lengths() -> None:
    assert crypto.gcm_aad(b"ab", b"xyz") == b"\x00\x02ab\x03xyz"
    assert crypto.gcm_aad(b"", b"") == b"\x00\x00\x00"
    # the layout tells "AAD = metadata, no metadata" from "no AAD, metadata" apart
    assert crypto.gcm_aad(b"m", b"") != crypto.gcm_aad(b"", b"m")


def test_swapping_aad_and_metadata_does_not_decrypt() -> None:
    key = crypto.derive_key(b"seed" * 8, "k")
    sealed = crypto.encrypt(key, b"data", b"", metadata=b"meta")
    assert crypto.decrypt(key, sealed.ciphertext, sealed.iv, sealed.tag, b"", b"meta") == b"data"
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(key, sealed.ciphertext, sealed.iv, sealed.tag, b"meta", b"")


def test_key_material_is_per_key_and_per_seed() -> None:
    assert crypto.derive_key(b"s" * 32, "a") == crypto.derive_key(b"s" * 32, "a")
    assert len({crypto.derive_key(b"s" * 32, "a"), crypto.derive_key(b"s" * 32, "b"),
                crypto.derive_key(b"t" * 32, "a")}) == 3
    assert len(crypto.derive_key(b"s" * 32, "a")) == 32
