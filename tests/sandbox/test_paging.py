"""Paging: Limit / Marker / NextMarker / Truncated for DescribeCustomKeyStores, ListKeys and
ListAliases (moto returns everything in one page)."""

from __future__ import annotations

import pytest

from tests.sandbox.helpers import kms_error, xks_params


def _all_pages(call, key, **params):
    pages, marker = [], None
    while True:
        response = call(**params, **({"Marker": marker} if marker else {}))
        pages.append([item for item in response[key]])
        if not response["Truncated"]:
            assert "NextMarker" not in response
            return pages
        marker = response["NextMarker"]


def test_describe_custom_key_stores_pages_in_creation_order(kms):
    """DescribeCustomKeyStores Limit/Marker: "When Truncated is true, this element is present and
    contains the value to use for the Marker parameter in a subsequent request"."""
    ids = [
        kms.create_custom_key_store(**xks_params(f"s{i}", endpoint=f"https://p{i}.example.com"))["CustomKeyStoreId"]
        for i in range(5)
    ]
    pages = _all_pages(kms.describe_custom_key_stores, "CustomKeyStores", Limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [s["CustomKeyStoreId"] for p in pages for s in p] == ids


def test_describe_custom_key_stores_default_returns_all(kms):
    for i in range(3):
        kms.create_custom_key_store(**xks_params(f"s{i}", endpoint=f"https://p{i}.example.com"))
    response = kms.describe_custom_key_stores()
    assert len(response["CustomKeyStores"]) == 3 and response["Truncated"] is False


def test_describe_custom_key_stores_with_id_and_name_is_a_validation_error(kms):
    """"provide either the CustomKeyStoreId or CustomKeyStoreName parameter, but not both"."""
    store_id = kms.create_custom_key_store(**xks_params("a"))["CustomKeyStoreId"]
    with kms_error("ValidationException"):
        kms.describe_custom_key_stores(CustomKeyStoreId=store_id, CustomKeyStoreName="a")


@pytest.mark.parametrize("limit", [0, 1001])
def test_describe_custom_key_stores_limit_is_1_to_1000(raw_kms, limit):
    """LimitType: min 1, max 1000."""
    with kms_error("ValidationException"):
        raw_kms.describe_custom_key_stores(Limit=limit)


def test_list_keys_defaults_to_100_per_page(kms):
    """ListKeys Limit: "If you do not include a value, it defaults to 100"."""
    ids = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(150)]
    first = kms.list_keys()
    assert len(first["Keys"]) == 100 and first["Truncated"] is True
    second = kms.list_keys(Marker=first["NextMarker"])
    assert len(second["Keys"]) == 50 and second["Truncated"] is False
    assert [k["KeyId"] for k in first["Keys"] + second["Keys"]] == ids


def test_list_keys_pages_survive_a_key_being_purged_between_pages(kms, sandbox):
    ids = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(6)]
    first = kms.list_keys(Limit=3)
    kms.schedule_key_deletion(KeyId=ids[2], PendingWindowInDays=7)  # the page's last key
    sandbox.clock.advance(7 * 86400)
    rest = kms.list_keys(Limit=3, Marker=first["NextMarker"])
    assert [k["KeyId"] for k in rest["Keys"]] == ids[3:]


@pytest.mark.parametrize("limit", [0, 1001])
def test_list_keys_limit_is_1_to_1000(raw_kms, limit):
    """ListKeys Limit: "it must be between 1 and 1000, inclusive"."""
    with kms_error("ValidationException"):
        raw_kms.list_keys(Limit=limit)


def test_list_keys_with_a_bad_marker_is_invalid_marker(kms):
    """ListKeys errors include InvalidMarkerException."""
    kms.create_key()
    with kms_error("InvalidMarkerException"):
        kms.list_keys(Marker="garbage")


def test_list_aliases_defaults_to_50_per_page_and_pages_everything(kms):
    """ListAliases Limit: "If you do not include a value, it defaults to 50"."""
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    for i in range(60):
        kms.create_alias(AliasName=f"alias/a{i:02d}", TargetKeyId=key_id)
    first = kms.list_aliases()
    assert len(first["Aliases"]) == 50 and first["Truncated"] is True
    names = [a["AliasName"] for p in _all_pages(kms.list_aliases, "Aliases", Limit=100) for a in p]
    assert [n for n in names if n.startswith("alias/a") and not n.startswith("alias/aws/")] == [f"alias/a{i:02d}" for i in range(60)]
    assert len(names) == len(set(names))


def test_list_aliases_limit_above_100_is_a_validation_error(kms):
    """ListAliases Limit: "it must be between 1 and 100, inclusive"."""
    with kms_error("ValidationException"):
        kms.list_aliases(Limit=101)


def test_list_aliases_for_one_key_pages_too(kms):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    for i in range(5):
        kms.create_alias(AliasName=f"alias/k{i}", TargetKeyId=key_id)
    kms.create_alias(AliasName="alias/other", TargetKeyId=other)
    pages = _all_pages(kms.list_aliases, "Aliases", KeyId=key_id, Limit=2)
    assert [a["AliasName"] for p in pages for a in p] == [f"alias/k{i}" for i in range(5)]


def test_list_aliases_with_a_bad_marker_is_invalid_marker(kms):
    with kms_error("InvalidMarkerException"):
        kms.list_aliases(Marker="garbage")


# --- ListResourceTags (it ignored Limit and Marker and always sent NextMarker: null) -------------


def _tagged_key(kms, count):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": f"k{i:02d}", "TagValue": str(i)} for i in range(count)])
    return key_id


def test_list_resource_tags_pages_with_limit_and_marker(kms):
    """ListResourceTags Limit: "KMS does not return more than the specified number of items";
    NextMarker: "When Truncated is true, this element is present"."""
    key_id = _tagged_key(kms, 5)
    pages = _all_pages(kms.list_resource_tags, "Tags", KeyId=key_id, Limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [t["TagKey"] for p in pages for t in p] == [f"k{i:02d}" for i in range(5)]


def test_list_resource_tags_defaults_to_50_per_page(kms):
    """Limit: "If you do not include a value, it defaults to 50." """
    key_id = _tagged_key(kms, 50)
    response = kms.list_resource_tags(KeyId=key_id)
    assert len(response["Tags"]) == 50 and response["Truncated"] is False and "NextMarker" not in response


@pytest.mark.parametrize("limit", [0, 51])
def test_list_resource_tags_limit_is_1_to_50(raw_kms, limit):
    """Limit: "If you include a value, it must be between 1 and 50, inclusive." """
    key_id = raw_kms.create_key()["KeyMetadata"]["KeyId"]
    with kms_error("ValidationException"):
        raw_kms.list_resource_tags(KeyId=key_id, Limit=limit)


def test_list_resource_tags_with_a_garbage_marker_is_invalid_marker(kms):
    """ListResourceTags errors include InvalidMarkerException; Marker: "Use only the value of
    NextMarker from the truncated response you just received." """
    key_id = _tagged_key(kms, 3)
    with kms_error("InvalidMarkerException"):
        kms.list_resource_tags(KeyId=key_id, Marker="garbage")


def test_a_marker_of_another_list_is_invalid(kms):
    key_id = _tagged_key(kms, 3)
    for _ in range(3):
        kms.create_key()
    marker = kms.list_keys(Limit=1)["NextMarker"]
    with kms_error("InvalidMarkerException"):
        kms.list_resource_tags(KeyId=key_id, Marker=marker)


def test_a_marker_of_the_same_operation_for_another_key_or_store_is_invalid(kms):
    """Marker: "Set it to the value of NextMarker from the truncated response you just received":
    a marker of another key's tags was applied to this key's (its first tags silently skipped), and
    one of the unfiltered store list to a filtered call (no store, no error)."""
    first, other = _tagged_key(kms, 5), _tagged_key(kms, 5)
    marker = kms.list_resource_tags(KeyId=first, Limit=3)["NextMarker"]
    with kms_error("InvalidMarkerException"):
        kms.list_resource_tags(KeyId=other, Marker=marker)
    assert [t["TagKey"] for t in kms.list_resource_tags(KeyId=first, Marker=marker)["Tags"]] == ["k03", "k04"]

    ids = [kms.create_custom_key_store(**xks_params(f"s{i}", endpoint=f"https://p{i}.example.com"))["CustomKeyStoreId"]
           for i in range(2)]
    marker = kms.describe_custom_key_stores(Limit=1)["NextMarker"]
    with kms_error("InvalidMarkerException"):
        kms.describe_custom_key_stores(CustomKeyStoreId=ids[0], Marker=marker)
    with kms_error("InvalidMarkerException"):
        kms.list_aliases(KeyId=first, Marker=kms.list_aliases(Limit=1)["NextMarker"])
