"""The embedded sandbox: the emulator in this process, its account persisted in a directory.

Every CLI command given ``--sandbox`` runs the emulator in-process under moto's ``mock_aws`` and
keeps the emulated account in ``<dir>/state.pickle`` (default ``.reconciler/sandbox``), so separate
processes see one account, the way separate ``aws`` commands see one AWS account.

Each emulated request runs under an exclusive lock on ``<dir>/state.lock``: it reloads the state if
another process saved since this one last read it, and saves it again after a request that changed
it. A process killed mid-command therefore leaves the account exactly as the requests it completed
left it, as with the real service.

The state file is a pickle of moto's backend objects. It is private to the user (mode 0600 in a
0700 directory) and only ever read back by this tool; do not load state directories from
untrusted sources.
"""

from __future__ import annotations

import copy
import fcntl
import os
import pickle
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from reconciler.sandbox.errors import SandboxError
from reconciler.sandbox import host as host_module
from reconciler.sandbox import settings as settings_module
from reconciler.sandbox.host import MemoryHost
from reconciler.sandbox.settings import SandboxSettings

DEFAULT_DIR = ".reconciler/sandbox"
_UNREAD = object()
STATE_FILE = "state.pickle"
LOCK_FILE = "state.lock"
FORMAT_VERSION = 2


def sandbox_dir(explicit: str | os.PathLike | None = None) -> Path:
    """``--sandbox-dir``, else ``RECONCILER_SANDBOX_DIR``, else ``.reconciler/sandbox``."""
    return Path(explicit or os.environ.get("RECONCILER_SANDBOX_DIR") or DEFAULT_DIR)


def boto3_session() -> Any:
    """The boto3 session for clients of the embedded sandbox: moto's own (it builds its region
    lists with it), so botocore's endpoint and service data are parsed once per process, not once
    per session (that parsing is a large part of a command's start-up). Only used inside an
    active EmbeddedSandbox, whose credentials are the sandbox's; clients pass their region."""
    from moto.core.base_backend import AccountSpecificBackend

    return AccountSpecificBackend.get_session()


class SandboxStateError(SandboxError):
    """The sandbox directory cannot be used (unreadable, from another version, ...)."""


def unusable_directory(directory: Path, exc: OSError) -> SandboxStateError:
    """The error for a sandbox directory that cannot be created or written (``exc`` says why)."""
    reason = exc.strerror or type(exc).__name__
    if not directory.is_dir():
        reason = f"it cannot be created: {reason}"
    for path in reversed([directory, *directory.parents]):
        if path.exists() and not path.is_dir():
            reason = f"{path} is a file, not a directory"
            break
    return SandboxStateError(f"cannot use {directory} as the sandbox directory ({reason}); pass a directory that "
                             "can be created and written with --sandbox-dir (or RECONCILER_SANDBOX_DIR)")


@dataclass
class _Snapshot:
    settings: SandboxSettings
    kms: dict[tuple[str, str], Any]
    cloudhsm_clusters: dict[tuple[str, str], dict]
    vpc_endpoint_services: dict[tuple[str, str], dict[str, Any]]


def _moto_backends():
    from moto.cloudhsmv2.models import cloudhsmv2_backends
    from moto.kms.models import kms_backends

    from reconciler.sandbox.vpce import endpoint_service_backends

    return kms_backends, cloudhsmv2_backends, endpoint_service_backends


def _instantiated(backend_dict) -> Iterator[tuple[str, str, Any]]:
    for account_id, regions in list(dict.items(backend_dict)):
        for region, backend in list(dict.items(regions)):
            yield account_id, region, backend


def capture(settings: SandboxSettings) -> _Snapshot:
    """What of moto's global state makes up the emulated account."""
    kms_backends, cloudhsm_backends, endpoint_service_backends = _moto_backends()
    return _Snapshot(
        settings=settings,
        kms={(a, r): b for a, r, b in _instantiated(kms_backends)},
        cloudhsm_clusters={
            (a, r): b.clusters for a, r, b in _instantiated(cloudhsm_backends) if b.clusters
        },
        vpc_endpoint_services={
            (a, r): b.configurations for a, r, b in _instantiated(endpoint_service_backends) if b.configurations
        },
    )


def restore(snapshot: _Snapshot) -> None:
    """Put a captured account back into moto's global backends."""
    kms_backends, cloudhsm_backends, endpoint_service_backends = _moto_backends()
    for backend_dict in (kms_backends, cloudhsm_backends, endpoint_service_backends):
        for account_id in list(dict.keys(backend_dict)):
            dict.clear(dict.__getitem__(backend_dict, account_id))
    for (account_id, region), backend in snapshot.kms.items():
        dict.__setitem__(kms_backends[account_id], region, backend)
    for (account_id, region), clusters in snapshot.cloudhsm_clusters.items():
        cloudhsm_backends[account_id][region].clusters = clusters
    for (account_id, region), configs in snapshot.vpc_endpoint_services.items():
        endpoint_service_backends[account_id][region].configurations = configs


def _kms_fingerprint() -> tuple:
    """Cheap summary that changes when a read-only request settled something (a purge of expired
    keys, a finished connect or disconnect), so that change is saved too."""
    from reconciler.sandbox.backend import generation

    kms_backends, _, _ = _moto_backends()
    return tuple(sorted((a, r, len(b.keys), generation(b)) for a, r, b in _instantiated(kms_backends)))


class EmbeddedHost(MemoryHost):
    """Brackets each emulated request with the cross-process lock, reload and save."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self.state_path = directory / STATE_FILE
        self.lock_path = directory / LOCK_FILE
        # the state file's (inode, mtime, size) when this host last loaded or saved it; _UNREAD
        # until the first load, which always starts from the file or, without one, from an empty
        # account (never from what an earlier sandbox left in this process's memory)
        self._seen: Any = _UNREAD
        self._depth = 0
        self._thread_lock = threading.RLock()

    # -- file lock ------------------------------------------------------------------------
    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._thread_lock:
            self._depth += 1
            try:
                if self._depth > 1:
                    yield
                    return
                try:
                    self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
                    fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                except OSError as exc:
                    raise unusable_directory(self.directory, exc) from None
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    try:
                        yield
                    finally:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)
            finally:
                self._depth -= 1

    def _stat(self) -> tuple | None:
        try:
            st = self.state_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    # -- load / save ----------------------------------------------------------------------
    def _load_if_changed(self) -> None:
        stat = self._stat()
        if stat == self._seen:
            return
        if stat is None:
            _empty_account()  # no state yet, or another process reset it
        else:
            try:
                with open(self.state_path, "rb") as fh:
                    version, snapshot = pickle.load(fh)
            except Exception as exc:  # corrupt, truncated or from another version
                raise SandboxStateError(
                    f"cannot read the sandbox state in {self.state_path} ({type(exc).__name__}); "
                    f"run '{self._reset_command()}' to start from an empty sandbox"
                ) from None
            if version != FORMAT_VERSION:
                raise SandboxStateError(
                    f"the sandbox state in {self.directory} was written by another version of "
                    f"reconciler; run '{self._reset_command()}' to start from an empty sandbox"
                )
            restore(snapshot)
            settings_module.activate(snapshot.settings)
        self._seen = stat

    def _reset_command(self) -> str:
        import shlex

        default = self.directory == sandbox_dir(None)  # what the command would use without the flag
        return shlex.join(["reconciler", "sandbox", "reset", *([] if default else ["--sandbox-dir", str(self.directory)])])

    def _save(self) -> None:
        snapshot = capture(settings_module.current())
        tmp = self.state_path.with_suffix(".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                pickle.dump((FORMAT_VERSION, snapshot), fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.state_path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise unusable_directory(self.directory, exc) from None
        self._seen = self._stat()

    # -- the bracket ----------------------------------------------------------------------
    @contextmanager
    def request(self, operation: str, mutating: bool) -> Iterator[None]:
        with self._exclusive():
            self._load_if_changed()
            before = None if mutating else _kms_fingerprint()
            yield
            if mutating or _kms_fingerprint() != before:
                self._save()

    @contextmanager
    def transaction(self, save: bool = True) -> Iterator[SandboxSettings]:
        """Load, let the caller change settings or backends, save (``sandbox advance``...)."""
        with self._exclusive():
            self._load_if_changed()
            yield settings_module.current()
            if save:
                self._save()

    def reset(self) -> None:
        with self._exclusive():
            try:
                self.state_path.unlink()
            except FileNotFoundError:
                pass
            self._seen = None  # read: no file, an empty account
            _empty_account()


def _empty_account() -> None:
    from moto.core.models import BackendDict

    BackendDict.reset()
    settings_module.activate(SandboxSettings())


class EmbeddedSandbox:
    """Context manager: the emulator active in this process, backed by a state directory."""

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.directory = sandbox_dir(directory)
        self.host = EmbeddedHost(self.directory)
        self._mock = None
        self._previous_host: MemoryHost | None = None
        self._previous_settings: SandboxSettings | None = None
        self._env: dict[str, str | None] = {}

    def __enter__(self) -> "EmbeddedSandbox":
        from moto import mock_aws

        from reconciler.sandbox.install import install

        install()
        # no AWS credentials are needed, and none of the user's must be used or sent anywhere
        for name, value in {
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
            "AWS_SESSION_TOKEN": None,
            "AWS_PROFILE": None,
            "AWS_ENDPOINT_URL": None,
            "AWS_ENDPOINT_URL_KMS": None,
            "AWS_ENDPOINT_URL_STS": None,
        }.items():
            self._env[name] = os.environ.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._mock = mock_aws()
        self._mock.start()
        self._previous_settings = settings_module.activate(SandboxSettings())
        self._previous_host = host_module.activate_host(self.host)
        with self.host._exclusive():
            self.host._load_if_changed()
        return self

    def __exit__(self, *exc: object) -> None:
        host_module.activate_host(self._previous_host or MemoryHost())
        if self._previous_settings is not None:
            settings_module.activate(self._previous_settings)
        if self._mock is not None:
            self._mock.stop()
        for name, value in self._env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    # -- sandbox control ---------------------------------------------------------------
    def advance(self, seconds: float):
        with self.host.transaction() as settings:
            return settings.clock.advance(seconds)

    def now(self):
        with self.host._exclusive():
            self.host._load_if_changed()
            return settings_module.current().clock.now()

    def reset(self) -> None:
        self.host.reset()

    @contextmanager
    def settings(self) -> Iterator[SandboxSettings]:
        """Change settings (faults, delays) and persist them."""
        with self.host.transaction() as settings:
            yield settings

    def snapshot_settings(self) -> SandboxSettings:
        with self.host._exclusive():
            self.host._load_if_changed()
            return copy.deepcopy(settings_module.current())
