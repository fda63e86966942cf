"""Which handler answers each KMS operation.

:data:`HANDLERS` maps an operation name to the emulator's handler; an operation it does not name
is answered by moto's ``KmsResponse`` method (DeleteAlias, UntagResource, UpdateKeyDescription).
Every operation of the API model is answered by one or the other (tests check it).

The table holds only operations the installed API model defines: botocore adds operations over
time (Encapsulate and Decapsulate arrived with ML-KEM keys), and the emulator answers the API that
the client beside it speaks, so an older botocore leaves a newer operation out instead of failing.
"""

from __future__ import annotations

from typing import Any, Callable

from reconciler.sandbox import apimodel
from reconciler.sandbox import exceptions as exc
from reconciler.sandbox.calls import find_key

Handler = Callable[[Any, dict], Any]


def _dry_run(operation: str, handler: Handler | None) -> Handler | None:
    """DryRun: "Checks if your request will succeed." The emulator has no permissions to check:
    a dry run that names an existing key answers DryRunOperationException ("The request was
    rejected because the DryRun parameter was specified"), and changes nothing."""
    if handler is None:
        return None

    def run(response: Any, params: dict[str, Any]) -> Any:
        if params.get("DryRun"):
            ignore_ciphertext = "IGNORE_CIPHERTEXT" in (params.get("DryRunModifiers") or ())
            if operation in ("Decrypt", "ReEncrypt") and not ignore_ciphertext and params.get("CiphertextBlob") is None:
                raise apimodel.missing_member("CiphertextBlob")
            for member in ("KeyId", "DestinationKeyId"):
                if params.get(member) is not None:
                    find_key(response, params[member])
            raise exc.DryRunOperationException()
        return handler(response, params)

    run.__name__ = getattr(handler, "__name__", operation)
    run.__doc__ = handler.__doc__
    return run


def _assemble() -> dict[str, Handler]:
    from reconciler.sandbox import ops_config, ops_crypto, ops_grants, ops_import, ops_keys, ops_stores

    table: dict[str, Handler] = {}
    for module in (ops_stores, ops_keys, ops_config, ops_grants, ops_crypto, ops_import):
        table.update(module.HANDLERS)
    model = apimodel.service_model()
    for operation in [op for op in table if op not in model.operation_names]:
        del table[operation]
    for operation, handler in list(table.items()):
        shape = model.operation_model(operation).input_shape
        if shape is not None and "DryRun" in shape.members:
            table[operation] = _dry_run(operation, handler)  # type: ignore[assignment]
    return table


HANDLERS: dict[str, Handler] = _assemble()
