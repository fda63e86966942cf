"""The emulated account is persisted by pickling moto's backend objects: every piece of custom key
store state lives on the KmsBackend and survives a round trip."""

from __future__ import annotations

import pickle

from moto.kms.models import kms_backends

from reconciler.sandbox.backend import LazyPrivateKey, custom_key_stores
from tests.conftest import FROZEN_AT
from tests.sandbox.helpers import ACCOUNT_ID, REGION, XKS_SECRET, describe_store, kms_error


def _backend():
    return kms_backends[ACCOUNT_ID][REGION]


def test_symmetric_keys_do_not_generate_an_rsa_key(kms):
    """moto generates RSA-2048 for every key; the sandbox defers it to first use."""
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    private_key = _backend().keys[key_id].private_key
    assert isinstance(private_key, LazyPrivateKey) and not private_key.generated


def test_backend_with_stores_and_keys_round_trips_through_pickle(kms, sandbox, xks_store, hsm_store):
    xks_id = xks_store("ext", connect=True)
    vpc_id = xks_store("vpc", connectivity="VPC_ENDPOINT_SERVICE")
    hsm_id, cluster_id = hsm_store("hsm", connect=True)
    xks_key = kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=xks_id, XksKeyId="ext-1")["KeyMetadata"]["KeyId"]
    hsm_key = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=hsm_id)["KeyMetadata"]["KeyId"]
    signer = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    signature = kms.sign(KeyId=signer, Message=b"hello", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    plain = kms.create_key(Tags=[{"TagKey": "team", "TagValue": "a"}])["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/plain", TargetKeyId=plain)
    kms.schedule_key_deletion(KeyId=plain, PendingWindowInDays=7)
    kms.connect_custom_key_store(CustomKeyStoreId=vpc_id)  # CONNECTING when pickled

    restored = pickle.loads(pickle.dumps(_backend()))

    stores = custom_key_stores(restored)
    assert [s.name for s in stores.values()] == ["ext", "vpc", "hsm"]
    assert stores[vpc_id].connection_state == "CONNECTING"
    assert stores[xks_id].raw_secret_access_key == XKS_SECRET  # kept (to compare), never returned
    assert stores[xks_id].xks_keys == {"ext-1": xks_key}
    assert stores[hsm_id].cloud_hsm_cluster_id == cluster_id
    assert restored.keys[xks_key].xks_key_id == "ext-1"
    assert restored.keys[hsm_key].custom_key_store_id == hsm_id
    assert not restored.keys[plain].private_key.generated
    assert restored.keys[signer].private_key.generated
    assert restored.keys[signer].private_key.verify(b"hello", signature, "RSASSA_PSS_SHA_256")

    # the host swaps the restored backend in: requests go on against it
    kms_backends[ACCOUNT_ID][REGION] = restored
    sandbox.clock.advance(sandbox.connect_delay_seconds)
    assert describe_store(kms, vpc_id)["ConnectionState"] == "CONNECTED"
    assert kms.list_resource_tags(KeyId=plain)["Tags"] == [{"TagKey": "team", "TagValue": "a"}]
    assert kms.verify(KeyId=signer, Message=b"hello", Signature=signature, SigningAlgorithm="RSASSA_PSS_SHA_256")["SignatureValid"]
    sandbox.clock.advance(7 * 86400)
    with kms_error("NotFoundException"):
        kms.describe_key(KeyId=plain)
    assert "alias/plain" not in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]


def test_store_creation_date_survives_pickle(kms, xks_store):
    store_id = xks_store()
    restored = pickle.loads(pickle.dumps(_backend()))
    assert custom_key_stores(restored)[store_id].creation_date == FROZEN_AT


def test_backend_pickled_without_the_deletion_index_rebuilds_it(kms, sandbox):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    backend = _backend()
    del backend.__dict__["sandbox_deletion_heap"]
    sandbox.clock.advance(7 * 86400)
    with kms_error("NotFoundException"):
        kms.describe_key(KeyId=key_id)
