"""Handlers of grants: CreateGrant, ListGrants, ListRetirableGrants, RevokeGrant, RetireGrant.

moto keeps the grants on its keys; the emulator finds the key first (NotFoundException instead of
moto's crash on an unknown key), pages the lists, and identifies a grant to retire as the API text
says.
"""

from __future__ import annotations

from typing import Any

from moto.kms.models import Grant

from reconciler.sandbox import exceptions as exc
from reconciler.sandbox import paging
from reconciler.sandbox.calls import backend_of, find_key
from reconciler.sandbox.state import PENDING_DELETION


def _entry(response: Any, grant: Grant, key_arn: str) -> dict[str, Any]:
    return {
        "KeyId": key_arn,
        "GrantId": grant.id,
        "Name": grant.name,
        "GranteePrincipal": grant.grantee_principal,
        "RetiringPrincipal": grant.retiring_principal,
        "IssuingAccount": f"arn:aws:iam::{response.current_account}:root",
        "Operations": grant.operations,
        "Constraints": grant.constraints or None,
    }


def create_grant(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """CreateGrant: "You must specify either GranteePrincipal or GranteeServicePrincipal, but not
    both"; a key pending deletion cannot get a grant (KMSInvalidStateException)."""
    key = find_key(response, params["KeyId"], aliases=False)
    grantee = _one_of(params, "GranteePrincipal", "GranteeServicePrincipal")
    if key.key_state == PENDING_DELETION:
        raise exc.KMSInvalidStateException(f"{key.arn} is pending deletion.")
    grant = key.add_grant(
        params.get("Name"),
        grantee,
        params["Operations"],
        constraints=params.get("Constraints"),
        retiring_principal=params.get("RetiringPrincipal") or params.get("RetiringServicePrincipal"),
    )
    return {"GrantId": grant.id, "GrantToken": grant.token}


def list_grants(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """ListGrants Limit: "it must be between 1 and 100, inclusive. If you do not include a value,
    it defaults to 50." """
    key = find_key(response, params["KeyId"], aliases=False)
    grants = [
        g for g in key.grants.values()
        if params.get("GrantId") in (None, g.id)
        and params.get("GranteePrincipal", params.get("GranteeServicePrincipal")) in (None, g.grantee_principal)
    ]
    page, next_marker = paging.paginate(
        grants, lambda g: g.id, kind="ListGrants", limit=_limit(params), marker=params.get("Marker"),
        params=params,
    )
    return paging.page_result("Grants", [_entry(response, g, key.arn) for g in page], next_marker)


def _one_of(params: dict[str, Any], first: str, second: str) -> str:
    """"You must specify either <first> or <second>, but not both." (ValidationException)"""
    given = [params[name] for name in (first, second) if params.get(name) is not None]
    if len(given) != 1:
        raise exc.ValidationException(f"You must specify either {first} or {second}, but not both.")
    return given[0]


def list_retirable_grants(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    principal = _one_of(params, "RetiringPrincipal", "RetiringServicePrincipal")
    found = [
        (g, key.arn)
        for key in backend_of(response).keys.values()
        for g in key.grants.values()
        if g.retiring_principal == principal
    ]
    page, next_marker = paging.paginate(
        found, lambda pair: pair[0].id, kind="ListRetirableGrants", limit=_limit(params), marker=params.get("Marker"),
        params=params,
    )
    return paging.page_result("Grants", [_entry(response, g, arn) for g, arn in page], next_marker)


def _limit(params: dict[str, Any]) -> int:
    limit = params.get("Limit") or 50
    if limit > 100:
        raise exc.ValidationException(
            f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
            "constraint: Member must have value less than or equal to 100"
        )
    return limit


def revoke_grant(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    key = find_key(response, params["KeyId"], aliases=False)
    if key.grants.pop(params["GrantId"], None) is None:
        raise exc.InvalidGrantIdException(f"Grant {params['GrantId']} does not exist for {key.arn}.")
    return {}


def retire_grant(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """RetireGrant: "To identify the grant to retire, use a grant token, or both the grant ID and a
    key identifier (key ID or key ARN) of the KMS key." (neither: ValidationException)."""
    token = params.get("GrantToken")
    if token is not None:
        for key in backend_of(response).keys.values():
            for grant_id, grant in list(key.grants.items()):
                if grant.token == token:
                    del key.grants[grant_id]
                    return {}
        raise exc.InvalidGrantTokenException()
    if params.get("KeyId") is None or params.get("GrantId") is None:
        raise exc.ValidationException("Specify a GrantToken, or both a KeyId and a GrantId, to identify the grant to retire.")
    key = find_key(response, params["KeyId"], aliases=False)
    if key.grants.pop(params["GrantId"], None) is None:
        raise exc.InvalidGrantIdException(f"Grant {params['GrantId']} does not exist for {key.arn}.")
    return {}


HANDLERS = {
    "CreateGrant": create_grant,
    "ListGrants": list_grants,
    "ListRetirableGrants": list_retirable_grants,
    "RevokeGrant": revoke_grant,
    "RetireGrant": retire_grant,
}
