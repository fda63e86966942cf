"""The shape of the part of a Terraform state that ``export --from-terraform`` reads, checked before
anything reads it.

A state file (format version 4) or the JSON of ``terraform show -json`` is walked here into
:class:`Resource` values, and every attribute the tool reads of an ``aws_kms_custom_key_store``,
``aws_kms_key`` or ``aws_kms_alias`` is checked against :data:`SCHEMAS` (its JSON type; an
identifier has no line break or control character; a deletion window is 7 to 30 days). What does
not fit raises :class:`ShapeError` naming where (the resource's address and the attribute) and
what: never a value, since a state holds secrets in clear text. Resources of other types are
skipped unread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

STORE, KEY, ALIAS = "aws_kms_custom_key_store", "aws_kms_key", "aws_kms_alias"
TYPES = (STORE, KEY, ALIAS)
MAX_MODULE_DEPTH = 100  # terraform show -json nests child modules; a real configuration has a few levels


class ShapeError(Exception):
    """Where (an address, an attribute) and what is wrong; the message never holds a value."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}")


@dataclass(frozen=True)
class Resource:
    address: str  # e.g. module.kms.aws_kms_key.payments["primary"]
    type: str
    values: dict[str, Any]


# -- the checks of one value: each returns what is wrong, or None --------------------------------

Check = Callable[[Any], "str | None"]  # what is wrong; "[0].name: what" when it is inside the value
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def kind(value: Any) -> str:
    """What a JSON value is, for a message (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__  # pragma: no cover - json.loads makes nothing else


def text(value: Any) -> str | None:
    """A string, or null (Terraform writes "" or null for an unset attribute)."""
    return None if value is None or isinstance(value, str) else f"expected a string, got {kind(value)}"


def ident(value: Any) -> str | None:
    """A string on one line: an id, a name, an ARN, a region."""
    wrong = text(value)
    if wrong is None and value is not None and _CONTROL.search(value):
        return "expected a value on one line, got a string with a line break or control character"
    return wrong


def required(check: Check) -> Check:
    def needed(value: Any) -> str | None:
        if value is None or value == "":
            return f"missing: expected a non-empty string, got {'an empty string' if value == '' else 'nothing'}"
        return check(value)
    return needed


def one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        if value is None or value in ("", *choices):
            return None
        if not isinstance(value, str):
            return f"expected one of {', '.join(choices)}, got {kind(value)}"
        return f"expected one of {', '.join(choices)}, got another string"
    return check


def flag(value: Any) -> str | None:
    return None if value is None or isinstance(value, bool) else f"expected true or false, got {kind(value)}"


def days(value: Any) -> str | None:
    if value is None or value == 0:  # 0: unset
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float)
                                                                           and not value.is_integer()):
        return f"expected a whole number of days from 7 to 30, got {kind(value)}"
    return None if 7 <= value <= 30 else "expected a whole number of days from 7 to 30, got a number outside it"


def string_map(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"expected an object of strings, got {kind(value)}"
    for name, item in value.items():
        if not isinstance(item, str):
            return f"expected an object of strings, got {kind(item)} for one of its keys"
    return None


def credential(value: Any) -> str | None:
    """``[{access_key_id, raw_secret_access_key}]`` (a block, in a list; or one object); only the
    access key id is read, and nothing of it is ever in a message."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items):
        where = f"[{index}]" if isinstance(value, list) else ""
        if not isinstance(item, dict):
            return f"{where}: expected an object with access_key_id, got {kind(item)}" if where else \
                f"expected a list or an object, got {kind(item)}"
        wrong = ident(item.get("access_key_id"))
        if wrong:
            return f"{where}.access_key_id: {wrong}"
    return None


SCHEMAS: dict[str, dict[str, Check]] = {
    STORE: {
        "id": required(ident), "custom_key_store_name": required(ident),
        "custom_key_store_type": one_of("AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"),
        "cloud_hsm_cluster_id": ident, "trust_anchor_certificate": text,
        "xks_proxy_connectivity": one_of("PUBLIC_ENDPOINT", "VPC_ENDPOINT_SERVICE"),
        "xks_proxy_uri_endpoint": ident, "xks_proxy_uri_path": ident, "xks_proxy_vpc_endpoint_service_name": ident,
        "xks_proxy_authentication_credential": credential, "region": ident,
    },
    KEY: {
        "custom_key_store_id": ident, "key_id": ident, "id": ident, "arn": ident, "xks_key_id": ident,
        "is_enabled": flag, "description": text, "tags": string_map, "deletion_window_in_days": days, "region": ident,
    },
    ALIAS: {"name": ident, "target_key_id": ident, "region": ident},
}


def check_values(resource: Resource) -> None:
    """Raise :class:`ShapeError` if an attribute the tool reads of ``resource`` does not fit."""
    values = resource.values
    for name, check in SCHEMAS[resource.type].items():
        wrong = check(values.get(name))
        if wrong and wrong.startswith(("[", ".")):  # inside the attribute: "[0].access_key_id: what"
            inside, wrong = wrong.split(": ", 1)
            raise ShapeError(f"{resource.address}: {name}{inside}", wrong)
        if wrong:
            raise ShapeError(f"{resource.address}: {name}", wrong)
    if resource.type == KEY and values.get("custom_key_store_id") and not (values.get("key_id") or values.get("id")):
        raise ShapeError(f"{resource.address}: key_id", "missing: a key of a custom key store needs its key_id or id")
    if resource.type == ALIAS and values.get("target_key_id") and not values.get("name"):
        raise ShapeError(f"{resource.address}: name", "missing: an alias needs its name")


# -- the resources of a state -----------------------------------------------------------------

def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ShapeError(where, f"expected an object, got {kind(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ShapeError(where, f"expected a list, got {kind(value)}")
    return value


def _field(item: dict[str, Any], name: str, where: str, check: Check = required(ident)) -> Any:
    wrong = check(item.get(name))
    if wrong:
        raise ShapeError(f"{where}: {name}", wrong)
    return item.get(name)


def _index(key: Any, where: str) -> str:
    if key is None:
        return ""
    if isinstance(key, bool) or not isinstance(key, (int, str)):
        raise ShapeError(f"{where}: index_key", f"expected a string or a whole number, got {kind(key)}")
    if isinstance(key, str) and _CONTROL.search(key):
        raise ShapeError(f"{where}: index_key", "expected a value on one line, got a string with a line break or "
                                                "control character")
    return f"[{json.dumps(key)}]"


def from_state_v4(items: Any) -> Iterator[Resource]:
    """The managed KMS resources of a state file's ``resources``."""
    if not isinstance(items, list):
        raise ShapeError("resources", f"expected a list, got {kind(items)}")
    for n, raw in enumerate(items):
        item = _object(raw, f"resources[{n}]")
        if item.get("mode") != "managed" or item.get("type") not in TYPES:
            continue
        where = f"resources[{n}] ({item['type']})"
        module = _field(item, "module", where, ident)
        base = f"{module}." if module else ""
        name = _field(item, "name", where)
        prefix = f"{base}{item['type']}.{name}"
        for i, instance_raw in enumerate(_list(item.get("instances"), f"{prefix}: instances")):
            instance = _object(instance_raw, f"{prefix}: instances[{i}]")
            address = prefix + _index(instance.get("index_key"), f"{prefix}: instances[{i}]")
            attributes = instance.get("attributes")
            resource = Resource(address, item["type"], dict(_object(attributes, f"{address}: attributes")
                                                            if attributes is not None else {}))
            check_values(resource)
            yield resource


def from_show_json(values: Any) -> Iterator[Resource]:
    """The managed KMS resources of ``terraform show -json``'s ``values``."""
    if values is None:
        return
    root = _object(values, "values").get("root_module")
    if root is not None:
        yield from _module(root, "values.root_module", 0)


def _module(raw: Any, where: str, depth: int) -> Iterator[Resource]:
    module = _object(raw, where)
    if depth > MAX_MODULE_DEPTH:
        raise ShapeError(where, f"modules nested more than {MAX_MODULE_DEPTH} levels deep")
    for n, item_raw in enumerate(_list(module.get("resources"), f"{where}.resources")):
        item = _object(item_raw, f"{where}.resources[{n}]")
        if item.get("mode") != "managed" or item.get("type") not in TYPES:
            continue
        address = _field(item, "address", f"{where}.resources[{n}] ({item['type']})")
        values = item.get("values")
        resource = Resource(address, item["type"], dict(_object(values, f"{address}: values")
                                                        if values is not None else {}))
        check_values(resource)
        yield resource
    for n, child in enumerate(_list(module.get("child_modules"), f"{where}.child_modules")):
        yield from _module(child, f"{where}.child_modules[{n}]", depth + 1)
