"""Multi-Region keys: ReplicateKey and UpdatePrimaryRegion (moto has no UpdatePrimaryRegion)."""

from __future__ import annotations

from tests.conftest import make_client
from tests.sandbox.helpers import kms_error


def test_replicate_a_key_named_by_its_arn(kms, sandbox):
    """ReplicateKey KeyId: "Specify the key ID or key ARN of the multi-Region primary key"."""
    arn = kms.create_key(MultiRegion=True)["KeyMetadata"]["Arn"]
    replica = kms.replicate_key(KeyId=arn, ReplicaRegion="us-west-2", Description="replica")
    assert replica["ReplicaKeyMetadata"]["Arn"] == arn.replace("us-east-1", "us-west-2")
    assert replica["ReplicaKeyMetadata"]["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"


def test_only_a_multi_region_primary_key_is_replicated_once_per_region(kms, sandbox):
    single = kms.create_key()["KeyMetadata"]["KeyId"]
    with kms_error("UnsupportedOperationException"):
        kms.replicate_key(KeyId=single, ReplicaRegion="us-west-2")
    multi = kms.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    kms.replicate_key(KeyId=multi, ReplicaRegion="us-west-2")
    with kms_error("AlreadyExistsException"):
        kms.replicate_key(KeyId=multi, ReplicaRegion="us-west-2")


def test_update_primary_region_swaps_primary_and_replica(kms, sandbox):
    """UpdatePrimaryRegion: "This operation changes the replica key in the specified Region to a
    primary key and changes the former primary key to a replica key." """
    key_id = kms.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    kms.replicate_key(KeyId=key_id, ReplicaRegion="us-west-2")
    kms.update_primary_region(KeyId=key_id, PrimaryRegion="us-west-2")
    west = make_client(region="us-west-2")
    assert west.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"
    east = kms.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]
    assert east["MultiRegionKeyType"] == "REPLICA" and east["PrimaryKey"]["Region"] == "us-west-2"


def test_update_primary_region_needs_a_replica_there(kms, sandbox):
    """"The primary Region must already have a replica key." """
    key_id = kms.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    with kms_error("NotFoundException"):
        kms.update_primary_region(KeyId=key_id, PrimaryRegion="eu-west-1")
