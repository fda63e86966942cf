"""The repository configuration: ``reconciler.yaml`` at the root of the manifests (optional).

It says how to reach each account the manifests name, and the region of stores without
``spec.region``::

    defaultRegion: us-east-1
    accounts:
      "111111111111": {roleArn: "arn:aws:iam::111111111111:role/reconciler", externalId: optional}
      "222222222222": {profile: staging}

An account reaches AWS through a named profile, a role assumed with the runner's credentials (role
ARN, optional external id and session name), or, with no entry, the default credential chain. It
is found in the first manifest path given (a directory, or a file's directory) or, failing that,
in that directory's parent. Without one, a run is for one account and region, as it always was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from reconciler.aws.reach import DEFAULT_SESSION_NAME, AccountAccess
from reconciler.aws.regions import region_problem
from reconciler.errors import UserError
from reconciler.manifest.loader import REPO_CONFIG_FILE
from reconciler.manifest.problems import Problem
from reconciler.manifest.yaml_nodes import walk

ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::([0-9]{12}):role/[\w+=,.@/-]{1,512}$")
# sts:AssumeRole's RoleSessionName and ExternalId (the STS API Reference's patterns and lengths)
SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}$")
EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_ACCESS_FIELDS = {"profile", "roleArn", "externalId", "sessionName"}


@dataclass(frozen=True)
class RepoConfig:
    path: Path | None = None
    default_region: str | None = None
    accounts: dict[str, AccountAccess] = field(default_factory=dict)

    def access(self, account: str | None) -> AccountAccess:
        return self.accounts.get(account or "", AccountAccess())


def find_repo_config(paths: Sequence[str]) -> Path | None:
    """``reconciler.yaml`` in the first path (a directory, or a file's directory), or its parent."""
    if not paths:
        return None
    first = Path(paths[0])
    base = first if first.is_dir() else first.parent
    for directory in (base, base.absolute().parent):
        candidate = directory / REPO_CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def load_repo_config(paths: Sequence[str]) -> RepoConfig | None:
    """The repository configuration of ``paths``, None without one, or one :class:`UserError` with
    every problem in it (``FILE: message``)."""
    path = find_repo_config(paths)
    if path is None:
        return None
    return read_repo_config(path)


def read_repo_config(path: Path) -> RepoConfig:
    """The repository configuration in ``path``, or one :class:`UserError` with every problem."""
    data, problems = _parse(path)
    if data is None and problems:  # unreadable, or not YAML
        raise UserError(str(problems[0]))
    if problems:
        raise UserError(f"{path}: the repository configuration is not valid ({len(problems)} problem(s)):\n"
                        + "\n".join(f"  {p}" for p in problems))
    data = data or {}
    accounts = {}
    for account, entry in (data.get("accounts") or {}).items():
        entry = entry or {}
        accounts[account] = AccountAccess(profile=entry.get("profile"), role_arn=entry.get("roleArn"),
                                          external_id=entry.get("externalId"),
                                          session_name=entry.get("sessionName") or DEFAULT_SESSION_NAME)
    return RepoConfig(path=path, default_region=data.get("defaultRegion"), accounts=accounts)


def repo_config_problems(path: Path) -> list[str]:
    """Every problem of the repository configuration in ``path``, each ``FILE[:LINE:COL]: message``
    (what ``reconciler validate`` prints)."""
    return [str(p) for p in _parse(path)[1]]


def repo_config_issues(path: Path) -> list[Problem]:
    """:func:`repo_config_problems` as :class:`~reconciler.manifest.problems.Problem` values."""
    return _parse(path)[1]


def split_repo_configs(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """What ``validate PATHS`` checks: the repository configurations (given as files named
    reconciler.yaml, or found beside the manifests as plan finds them), and the manifest paths."""
    def is_config(path: str) -> bool:
        return Path(path).name == REPO_CONFIG_FILE and Path(path).is_file()

    given = [Path(p) for p in paths if is_config(p)]
    rest = [p for p in paths if not is_config(p)]
    found = find_repo_config(rest)
    return list(dict.fromkeys(given + ([found] if found else []))), rest


MAX_CONFIG_BYTES = 1024 * 1024


def _parse(path: Path) -> tuple[Any, list[Problem]]:
    """The data of ``path`` and its problems, each ``FILE:LINE:COL: message`` where there is a
    place to point at. Read as manifests are: duplicate keys are problems (YAML would silently keep
    the last: another account's role), tags that build objects and alias bombs are refused."""
    import yaml

    from reconciler.manifest.yaml_nodes import ManifestLoader, Recursive, TooLarge, check_expansion, node_problems

    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            return None, [Problem(str(path), None, None, f"the file is larger than {MAX_CONFIG_BYTES // 1024} KiB; "
                                                         "is it the repository configuration?")]
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(str(path), None, None,
                              f"cannot read the repository configuration ({exc.__class__.__name__})")]

    def at(node: Any, message: str) -> Problem:
        return Problem(str(path), node.start_mark.line + 1, node.start_mark.column + 1, message)

    loader = ManifestLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, []
        bad = node_problems(root) + [(node, "merge keys (<<) are not allowed here: they can give an account a second "
                                             "entry that silently wins; write each entry out")
                                     for node in _merge_keys(root)]
        if bad:
            return None, [at(node, message) for node, message in bad]
        check_expansion(root, limit=10_000)
        data = loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [Problem(str(path), mark.line + 1 if mark else None, mark.column + 1 if mark else None,
                              "not valid YAML; fix the repository configuration")]
    except (TooLarge, Recursive, RecursionError):
        return None, [Problem(str(path), None, None,
                              "YAML aliases make the file too large or recursive; write it out plainly")]
    finally:
        loader.dispose()
    placed = [at(duplicate, f"duplicate key {str(key)!r} (first at line {first.start_mark.line + 1}); YAML would "
                            "silently keep only the last one, so remove one of them")
              for key, duplicate, first in loader.duplicate_keys]
    for loc, message, on_key in config_problems(data):
        found = walk(root, loc)
        placed.append(at(found.key if on_key and found.key is not None and found.complete else found.value,
                         message))
    return data, sorted(placed, key=lambda p: (p.line or 0, p.col or 0))


def _merge_keys(root: Any) -> list[Any]:
    from yaml.nodes import MappingNode, SequenceNode

    found, stack, seen = [], [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if key.tag == "tag:yaml.org,2002:merge":
                    found.append(key)
                stack.extend((key, value))
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return found


def config_problems(data: Any) -> list[tuple[tuple[str, ...], str, bool]]:
    """Every problem of a parsed ``reconciler.yaml``, each with its fix, and the place it is about:
    a path of keys, and whether the problem is the entry's key (an unknown field) or its value."""
    problems: list[tuple[tuple[str, ...], str, bool]] = []

    def problem(loc: tuple[str, ...], message: str, on_key: bool = False) -> None:
        where = ".".join(loc)
        problems.append((loc, f"{where}: {message}" if where else message, on_key))

    if data is None:
        return []
    if not isinstance(data, dict):
        return [((), "expected a mapping with defaultRegion and accounts", False)]
    for k in data:
        if k not in ("defaultRegion", "accounts"):
            problems.append(((str(k),), f"unknown field {k!r}: expected defaultRegion, accounts", True))
    region = data.get("defaultRegion")
    if region is not None:
        message = region_problem(region) if isinstance(region, str) else "expected a string"
        if message:
            problem(("defaultRegion",), message)
    accounts = data.get("accounts")
    if accounts is None:
        return problems
    if not isinstance(accounts, dict):
        problem(("accounts",), "expected a mapping of 12-digit account ids (quoted) to how to reach them")
        return problems
    for account, entry in accounts.items():
        loc = ("accounts", str(account))
        if not isinstance(account, str) or not ACCOUNT_RE.match(account):
            problem(loc, "the key must be a 12-digit account id, quoted (\"111122223333\")", on_key=True)
            continue
        if entry is None:
            continue  # the default chain, said explicitly
        if not isinstance(entry, dict):
            problem(loc, "expected {profile: NAME} or {roleArn: ARN, externalId: ..., sessionName: ...}")
            continue
        before = len(problems)
        for k in entry:
            if k not in _ACCESS_FIELDS:
                problem(loc + (str(k),), f"unknown field; expected one of {', '.join(sorted(_ACCESS_FIELDS))}",
                        on_key=True)
        for name in sorted(_ACCESS_FIELDS & set(entry)):
            if not isinstance(entry[name], str) or not entry[name]:
                problem(loc + (name,), "expected a non-empty string")
        if len(problems) > before:
            continue
        role = entry.get("roleArn")
        if entry.get("profile") and role:
            problem(loc, "give profile or roleArn, not both (the role is assumed with the runner's credentials)",
                    on_key=True)
        if role:
            match = ROLE_ARN_RE.match(role)
            if not match:
                problem(loc + ("roleArn",), "expected arn:aws:iam::ACCOUNT:role/NAME")
            elif match.group(1) != account:
                problem(loc + ("roleArn",), f"the role is in account {match.group(1)}, not {account}; its "
                                            "credentials would act there")
        elif "externalId" in entry or "sessionName" in entry:
            problem(loc, "externalId and sessionName go with roleArn", on_key=True)
        if "sessionName" in entry and not SESSION_NAME_RE.match(entry["sessionName"]):
            problem(loc + ("sessionName",), "2 to 64 characters of letters, digits and +=,.@_-")
        if "externalId" in entry and not EXTERNAL_ID_RE.match(entry["externalId"]):
            problem(loc + ("externalId",), "2 to 1224 characters of letters, digits and +=,.@:/_-")
    return problems
    if not isinstance(accounts, dict):
        return problems + ["accounts: expected a mapping of 12-digit account ids (quoted) to how to reach them"]
    for account, entry in accounts.items():
        where = f"accounts.{account}"
        if not isinstance(account, str) or not ACCOUNT_RE.match(account):
            problems.append(f"{where}: the key must be a 12-digit account id, quoted (\"111122223333\")")
            continue
        if entry is None:
            continue  # the default chain, said explicitly
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected {{profile: NAME}} or "
                            "{roleArn: ARN, externalId: ..., sessionName: ...}")
            continue
        before = len(problems)
        problems += [f"{where}.{k}: unknown field; expected one of {', '.join(sorted(_ACCESS_FIELDS))}"
                     for k in entry if k not in _ACCESS_FIELDS]
        for name in _ACCESS_FIELDS & set(entry):
            if not isinstance(entry[name], str) or not entry[name]:
                problems.append(f"{where}.{name}: expected a non-empty string")
        if len(problems) > before:
            continue
        role = entry.get("roleArn")
        if entry.get("profile") and role:
            problems.append(f"{where}: give profile or roleArn, not both (the role is assumed with the runner's "
                            "credentials)")
        if role:
            match = ROLE_ARN_RE.match(role)
            if not match:
                problems.append(f"{where}.roleArn: expected arn:aws:iam::ACCOUNT:role/NAME")
            elif match.group(1) != account:
                problems.append(f"{where}.roleArn: the role is in account {match.group(1)}, not {account}; "
                                "its credentials would act there")
        elif "externalId" in entry or "sessionName" in entry:
            problems.append(f"{where}: externalId and sessionName go with roleArn")
        if "sessionName" in entry and not SESSION_NAME_RE.match(entry["sessionName"]):
            problems.append(f"{where}.sessionName: 2 to 64 characters of letters, digits and +=,.@_-")
        if "externalId" in entry and not EXTERNAL_ID_RE.match(entry["externalId"]):
            problems.append(f"{where}.externalId: 2 to 1224 characters of letters, digits and +=,.@:/_-")
    return problems
