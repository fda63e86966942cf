"""Reaching several accounts and regions in one run: one connection per target.

A :class:`Reach` is opened once per run (the embedded sandbox, when ``--sandbox``, is entered
once and shared by every target); :meth:`Reach.connection` gives the :class:`Connection` of one
account and region, through the account's :class:`AccountAccess`: a named profile, a role assumed
with the runner's credentials (the role's credentials act in the role's account, refreshed
before they expire), or the default chain (``--profile`` / ``AWS_PROFILE`` included).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from reconciler.aws.connection import Connection, ConnectionError_, Target

DEFAULT_SESSION_NAME = "reconciler"


@dataclass(frozen=True)
class AccountAccess:
    """How to reach one account: a profile, a role to assume, or (neither) the default chain."""

    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    session_name: str = DEFAULT_SESSION_NAME

    def describe(self) -> str:
        if self.role_arn:
            return f"role {self.role_arn}"
        if self.profile:
            return f"profile {self.profile}"
        return "the default credential chain"


class AssumeRoleError(ConnectionError_):
    """A role that cannot be assumed: the target it reaches fails alone."""


class _CredentialedSession:
    """A session whose clients carry fixed credentials (the sandbox's assumed roles: the
    emulator's credentials do not expire), sharing the base session's parsed service data."""

    def __init__(self, base: Any, credentials: dict[str, str]) -> None:
        self._base = base
        self._credentials = credentials

    def client(self, service: str, **kwargs: Any) -> Any:
        return self._base.client(service, aws_access_key_id=self._credentials["AccessKeyId"],
                                 aws_secret_access_key=self._credentials["SecretAccessKey"],
                                 aws_session_token=self._credentials["SessionToken"], **kwargs)


class Reach:
    """Context manager: connections to the targets of one run."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.sandbox: Any = None
        self._stack = ExitStack()

    def __enter__(self) -> "Reach":
        if self.target.sandbox:
            from reconciler.sandbox.embedded import EmbeddedSandbox

            self.sandbox = self._stack.enter_context(EmbeddedSandbox(self.target.sandbox_dir))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def connection(self, region: str, access: AccountAccess, account: str | None = None) -> Connection:
        """The connection of ``region`` with ``access`` (``account``, when known, for messages).
        Assuming a role happens here, so a role that cannot be assumed fails this target alone."""
        if self.sandbox is not None:
            from reconciler.sandbox.embedded import boto3_session

            session: Any = boto3_session()
            if access.role_arn:
                session = _CredentialedSession(session, self._assume(session, region, access, account))
            sandbox = self.sandbox
            return Connection(session=session, region=region, now=sandbox.now,
                              sleep=lambda seconds: sandbox.advance(seconds), sandbox=sandbox)
        import boto3

        try:
            source = boto3.Session(profile_name=access.profile or self.target.profile, region_name=region)
        except Exception as exc:  # botocore.exceptions.ProfileNotFound and friends
            where = f"profile {access.profile} (reconciler.yaml)" if access.profile else "--profile / AWS_PROFILE"
            raise ConnectionError_(f"{exc}; check {where}") from None
        session = source
        if access.role_arn:
            session = self._refreshing_session(source, region, access, account)
        return Connection(session=session, region=region, endpoint_url=self.target.endpoint_url)

    # -- assuming a role -----------------------------------------------------------------------
    def _assume(self, source: Any, region: str, access: AccountAccess, account: str | None) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        from reconciler.aws.connection import client_config

        kwargs: dict[str, Any] = {"region_name": region, "config": client_config(4)}
        if self.target.endpoint_url:
            kwargs["endpoint_url"] = self.target.endpoint_url
        args = {"RoleArn": access.role_arn, "RoleSessionName": access.session_name}
        if access.external_id:
            args["ExternalId"] = access.external_id
        try:
            return source.client("sts", **kwargs).assume_role(**args)["Credentials"]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            detail = f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
        except BotoCoreError as exc:
            detail = str(exc)
        raise AssumeRoleError(
            f"cannot assume {access.role_arn} for account {account or '(its account)'} ({detail}); check that the "
            "role exists, that its trust policy lets the runner's credentials assume it"
            + (" with the externalId in reconciler.yaml" if access.external_id else "")
            + ", and the accounts entry of reconciler.yaml") from None

    def _refreshing_session(self, source: Any, region: str, access: AccountAccess, account: str | None) -> Any:
        """A boto3 session whose credentials are the role's, assumed now (to fail early) and again
        before they expire (an apply can outlast them)."""
        import boto3
        import botocore.session
        from botocore.credentials import RefreshableCredentials

        def fetch() -> dict[str, Any]:
            creds = self._assume(source, region, access, account)
            expiry = creds["Expiration"]
            if isinstance(expiry, datetime):
                expiry = expiry.astimezone(timezone.utc).isoformat()
            return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                    "token": creds["SessionToken"], "expiry_time": expiry}

        credentials = RefreshableCredentials.create_from_metadata(metadata=fetch(), refresh_using=fetch,
                                                                  method="assume-role")
        core = botocore.session.get_session()
        core._credentials = credentials  # botocore has no public setter for a credentials object
        return boto3.Session(botocore_session=core, region_name=region)
