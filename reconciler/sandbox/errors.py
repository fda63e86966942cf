"""The errors of the sandbox's own controls (not KMS errors, which are in :mod:`.exceptions`): a
state directory that cannot be used, a control request that cannot be honoured. A caller shows
the message as it is: it says what to do."""

from __future__ import annotations


class SandboxError(Exception):
    """A problem a user of the sandbox can fix; the message says how."""

    exit_code = 1
