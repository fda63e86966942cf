"""Secret references: resolved only when a step needs the value, and never shown.

A manifest names where a secret lives (``{fromEnv: NAME}`` or ``{fromFile: PATH}``), never the
secret itself. :func:`resolve_secret` reads it at the last moment and returns a
:class:`SensitiveStr`: a real ``str`` (so it can be handed to boto3 as is) whose ``str()``,
``repr()`` and format output are ``(sensitive)``, so that logging it, putting it in an
f-string or an exception message, or printing a structure that holds it shows nothing.
Call :meth:`SensitiveStr.reveal` where the plain value is really needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic_core import PydanticCustomError

from reconciler.manifest.model import KmsString, SecretRef

SENSITIVE = "(sensitive)"


class SecretError(Exception):
    """A secret reference could not be resolved. The message is one line and never holds the value."""


class SensitiveStr(str):
    """A secret value: a ``str`` whose text representation is ``(sensitive)``.

    ``json.dumps`` and botocore's serializer see the real characters (they read the string's
    data, not ``str()``); everything that formats it for people sees ``(sensitive)``.
    Concatenation and other ``str`` methods return plain strings: call :meth:`reveal` instead of
    relying on them, and never write the result anywhere people read.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return SENSITIVE

    def __str__(self) -> str:
        return SENSITIVE

    def __format__(self, format_spec: str) -> str:
        return format(SENSITIVE, format_spec)

    def reveal(self) -> str:
        """The plain value, for the one call that needs it."""
        return str.__str__(self)

    # The name pydantic's SecretStr uses, so callers can treat both alike.
    get_secret_value = reveal

    def __reduce__(self) -> Any:
        raise TypeError("a sensitive value cannot be pickled")


def _where(field: str | None) -> str:
    return f"{field}: " if field else ""


def resolve_secret(
    ref: SecretRef,
    *,
    manifest_dir: str | Path,
    root: str | Path,
    allow_outside_root: bool = False,
    field: str | None = None,
    check: KmsString | None = None,
) -> SensitiveStr:
    """Read the value a reference points at.

    ``fromFile`` paths are relative to ``manifest_dir``; after following symlinks they must lie
    inside ``root`` (the manifests' root directory) unless ``allow_outside_root``. One trailing
    newline (``\\n`` or ``\\r\\n``) is dropped. ``field`` (e.g. ``spec.xks.credential.secretAccessKey``)
    prefixes messages; ``check`` validates the value's format (without showing it).

    Raises :class:`SecretError` with a one-line message that names the variable or file and the
    fix, never the value.
    """
    where = _where(field)
    if ref.fromEnv is not None:
        name = ref.fromEnv
        value = os.environ.get(name)
        if value is None:
            raise SecretError(f"{where}environment variable {name} is not set; export {name} with the "
                              "value before running, or change the reference")
        if value == "":
            raise SecretError(f"{where}environment variable {name} is set but empty; export {name} with "
                              "the value before running")
        source = f"environment variable {name}"
    elif ref.fromFile is not None:
        value = _read_secret_file(ref.fromFile, Path(manifest_dir), Path(root), allow_outside_root, where)
        source = f"file {ref.fromFile!r}"
    else:  # pragma: no cover - SecretRef guarantees one of the two
        raise SecretError(f"{where}the reference names neither fromEnv nor fromFile")
    if check is not None:
        try:
            check.validate(value)
        except PydanticCustomError as exc:
            raise SecretError(f"{where}the value in {source} {exc.message()} (value not shown)") from None
    return SensitiveStr(value)


# the largest value a reference holds is a trust anchor certificate (at most 5,000 characters)
MAX_SECRET_FILE_BYTES = 64 * 1024


def _read_secret_file(path_text: str, manifest_dir: Path, root: Path, allow_outside_root: bool,
                      where: str) -> str:
    given = Path(path_text)
    path = given if given.is_absolute() else manifest_dir / given
    try:
        real = path.resolve()
        real_root = root.resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops
        raise SecretError(f"{where}cannot resolve secret file {path_text!r}: {exc}") from None
    if not allow_outside_root and not real.is_relative_to(real_root):
        raise SecretError(
            f"{where}secret file {path_text!r} resolves to {real}, outside the manifests root {real_root}; "
            "move it under the root, or allow secret files outside the root with --allow-outside-root")
    if not real.exists():
        raise SecretError(f"{where}secret file {path_text!r} does not exist (looked for {path}); create it "
                          "or fix the path (relative paths are relative to the manifest's directory)")
    if not real.is_file():
        raise SecretError(f"{where}secret file {path_text!r} is not a regular file ({real})")
    try:
        with open(real, "rb") as fh:
            data = fh.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise SecretError(f"{where}cannot read secret file {path_text!r}: {exc.strerror or exc}; check "
                          "its permissions") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise SecretError(f"{where}secret file {path_text!r} is larger than {MAX_SECRET_FILE_BYTES // 1024} KiB; "
                          "it must hold only the value (a secret, a password or a PEM certificate)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"{where}secret file {path_text!r} is not UTF-8 text") from None
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if text == "":
        raise SecretError(f"{where}secret file {path_text!r} is empty; write the value into it")
    return text


__all__ = ["SENSITIVE", "SecretError", "SensitiveStr", "resolve_secret"]
