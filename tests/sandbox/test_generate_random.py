"""GenerateRandom with CustomKeyStoreId (it was ignored).

CustomKeyStoreId: "Generates the random byte string in the CloudHSM cluster that is associated
with the specified CloudHSM key store [...] External key store IDs are not valid for this
parameter. If you specify the ID of an external key store, GenerateRandom throws an
UnsupportedOperationException." Its errors include CustomKeyStoreNotFoundException and
CustomKeyStoreInvalidStateException.
"""

from __future__ import annotations

from tests.sandbox.helpers import kms_error


def test_in_a_connected_cloudhsm_key_store(kms, hsm_store):
    store_id, _ = hsm_store(connect=True)
    assert len(kms.generate_random(NumberOfBytes=24, CustomKeyStoreId=store_id)["Plaintext"]) == 24


def test_an_unknown_custom_key_store_is_not_found(kms):
    with kms_error("CustomKeyStoreNotFoundException"):
        kms.generate_random(NumberOfBytes=8, CustomKeyStoreId="cks-0123456789abcdef0")


def test_a_disconnected_cloudhsm_key_store_is_invalid_state(kms, hsm_store):
    store_id, _ = hsm_store()
    with kms_error("CustomKeyStoreInvalidStateException"):
        kms.generate_random(NumberOfBytes=8, CustomKeyStoreId=store_id)


def test_an_external_key_store_is_unsupported(kms, xks_store):
    store_id = xks_store(connect=True)
    with kms_error("UnsupportedOperationException"):
        kms.generate_random(NumberOfBytes=8, CustomKeyStoreId=store_id)


def test_without_a_store(kms):
    assert len(kms.generate_random(NumberOfBytes=1024)["Plaintext"]) == 1024


def test_number_of_bytes_is_required(raw_kms):
    """NumberOfBytes: "The length of the random byte string. This parameter is required." """
    with kms_error("ValidationException", message_contains="numberOfBytes"):
        raw_kms.generate_random()
