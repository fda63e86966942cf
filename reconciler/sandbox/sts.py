"""The emulator's STS: AssumeRole of a role the sandbox knows, whose credentials act in the role's
account (moto maps the temporary access key to the account in the role ARN).

moto lets any ARN be assumed ("the role does not need to exist"). The sandbox knows its roles
(``SandboxSettings.roles``: role ARN -> the external id its trust policy requires, or None),
seeded by ``reconciler sandbox init`` from ``reconciler.yaml`` or by ``sandbox seed-role``; any
other role, or a missing or different external id, is refused as STS refuses a role whose trust
policy does not let the caller in: ``AccessDenied``, "User: ... is not authorized to perform:
sts:AssumeRole on resource: ...".
"""

from __future__ import annotations

from typing import Any

from reconciler.sandbox import settings as settings_module

_MARKER = "_reconciler_sandbox_sts"


def refusal(role_arn: str | None, external_id: str | None, caller_account: str) -> str | None:
    """Why AssumeRole of ``role_arn`` is refused, or None when it is allowed."""
    roles = getattr(settings_module.current(), "roles", None) or {}
    if role_arn in roles and roles[role_arn] == (external_id or None):
        return None
    return (f"User: arn:aws:iam::{caller_account}:user/sandbox is not authorized to perform: sts:AssumeRole "
            f"on resource: {role_arn}")


def install_sts() -> None:
    """Patch moto's STS responses (idempotent)."""
    from moto.sts.exceptions import STSClientError
    from moto.sts.responses import TokenResponse

    if getattr(TokenResponse, _MARKER, False):
        return
    original = TokenResponse.assume_role

    def assume_role(self: Any) -> Any:
        why = refusal(self._get_param("RoleArn"), self._get_param("ExternalId"), self.current_account)
        if why is not None:
            raise STSClientError("AccessDenied", why)
        return original(self)

    TokenResponse.assume_role = assume_role  # type: ignore[method-assign]
    import warnings

    # STS's model lists no AccessDenied shape (it is a common error): moto warns when it answers one
    warnings.filterwarnings("ignore", message=r"Exception\(STSClientError\) with code AccessDenied",
                            category=UserWarning)
    setattr(TokenResponse, _MARKER, True)
