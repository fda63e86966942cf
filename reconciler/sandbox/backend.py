"""KMS custom key store rules applied to a moto ``KmsBackend``: one import for callers.

The rules live by concept (docs/emulator.md, "How it is built"):

- :mod:`~reconciler.sandbox.state`: the store model and where state is kept on moto's backend;
- :mod:`~reconciler.sandbox.backing`: CloudHSM clusters and VPC endpoint services;
- :mod:`~reconciler.sandbox.connection`: the connection state machine;
- :mod:`~reconciler.sandbox.stores`, :mod:`~reconciler.sandbox.store_update`: the store operations;
- :mod:`~reconciler.sandbox.keys`, :mod:`~reconciler.sandbox.keyspecs`,
  :mod:`~reconciler.sandbox.guards`: keys, key specs, key state and use;
- :mod:`~reconciler.sandbox.timeline`: what the emulator clock makes due;
- :mod:`~reconciler.sandbox.paging`: Limit / Marker / NextMarker;
- :mod:`~reconciler.sandbox.lazykey`: moto's private keys, generated on first use.

This module re-exports the names other code (benchmarks, the embedded sandbox, state pickled by an
earlier version, which names ``reconciler.sandbox.backend.CustomKeyStore`` and
``LazyPrivateKey``) uses. The rules cite the KMS API Reference; docs/kms-rules.md collects them.
"""

from __future__ import annotations

from reconciler.sandbox.backing import (  # noqa: F401
    cluster_configuration_problem,
    find_cluster,
    find_vpc_endpoint_service,
    vpc_service_configuration_problem,
)
from reconciler.sandbox.connection import (  # noqa: F401
    connect_custom_key_store,
    disconnect_custom_key_store,
    settle_store,
)
from reconciler.sandbox.guards import check_key_usable  # noqa: F401
from reconciler.sandbox.keys import (  # noqa: F401
    cancel_key_deletion,
    check_create_key_parameters,
    create_key_in_custom_key_store,
    effective_key_state,
    key_metadata,
    require_key,
    schedule_key_deletion,
)
from reconciler.sandbox.lazykey import LazyPrivateKey  # noqa: F401
from reconciler.sandbox.paging import paginate  # noqa: F401
from reconciler.sandbox.state import (  # noqa: F401
    CLOUDHSM,
    CONNECTED,
    CONNECTING,
    CUSTOM_KEY_STORE_ORIGINS,
    DISCONNECTED,
    DISCONNECTING,
    EXTERNAL_KEY_STORE,
    FAILED,
    PENDING_DELETION,
    PUBLIC_ENDPOINT,
    UNAVAILABLE,
    VPC_ENDPOINT_SERVICE,
    CustomKeyStore,
    custom_key_stores,
    epoch_seconds,
    generation,
    get_store,
    key_store_of,
    keys_in_store,
    naive_utc,
    now,
)
from reconciler.sandbox.store_update import update_custom_key_store  # noqa: F401
from reconciler.sandbox.stores import (  # noqa: F401
    create_custom_key_store,
    delete_custom_key_store,
    describe_custom_key_stores,
)
from reconciler.sandbox.timeline import purge_expired_keys, settle  # noqa: F401
