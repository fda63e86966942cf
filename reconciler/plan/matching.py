"""Which live key a declared key means: the one decision that everything destructive rests on.

The rules, in the README's safety section:

* A key of an external key store is the key of the store whose ``XksKeyId`` is the declared
  ``xksKeyId`` (KMS lets one external key back at most one KMS key of a store).
* A key of a CloudHSM key store is identified by its alias: **the key that holds the alias is the
  declared key**, whatever other keys of the store carry. A manual rotation (a new key, the alias
  moved to it, the old key scheduled for deletion) therefore makes the new key the declared key,
  and the old one is drift that the plan leaves alone.
* Only when no key of the store holds the alias does the tool look at the tag it sets on every
  key it creates (``reconciler:managed-key = <alias>``): that recovers an apply interrupted
  between CreateKey and CreateAlias. It adopts such a key only when exactly one key carries the
  tag and that key is not pending deletion; several candidates, or a candidate pending deletion,
  are refused (the tool never guesses which key holds someone's data, and never rescues a key
  that nothing names).

Keys that match no declared key are drift; a drift key that carries the managed tag of a
declared key is named as a likely duplicate (two applies at once without a lock) or the old key
of a rotation, so nobody adopts it by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.live.model import LiveKey, LiveStore, QUARANTINE_TAG  # noqa: F401  (re-exported)
from reconciler.plan.desired import DesiredKey, DesiredStore

# Set on every key the tool creates (its XksKeyId or alias): lets the executor find a key it
# created before a lost response, and lets an interrupted CloudHSM create be finished.
MANAGED_TAG = "reconciler:managed-key"


@dataclass
class KeyMatch:
    """The outcome of matching one store's declared keys with its live keys."""

    matched: dict[str, LiveKey] = field(default_factory=dict)  # declared ident -> live key
    refused: dict[str, str] = field(default_factory=dict)  # declared ident -> why no key was chosen
    notes: dict[str, str] = field(default_factory=dict)  # live KeyId -> what it looks like (drift)

    def live_key(self, key: DesiredKey) -> LiveKey | None:
        return self.matched.get(key.ident)


def _tagged(live_key: LiveKey, value: str) -> bool:
    return live_key.tag_dict.get(MANAGED_TAG) == value


def _refuse_shared_holders(want: DesiredStore, out: KeyMatch, claimed: set[str]) -> None:
    """Two declared keys whose aliases are held by one live key (an alias moved by hand onto
    another declared key): which declared key that key is cannot be decided, so neither is
    matched; each is refused, naming the aliases to point back. Matching both would make the plan
    rewrite one key to each declaration in turn, forever."""
    by_key: dict[str, list[DesiredKey]] = {}
    for key in want.keys:
        live_key = out.matched.get(key.ident)
        if live_key is not None and not key.xks_key_id:
            by_key.setdefault(live_key.key_id, []).append(key)
    for key_id, keys in by_key.items():
        if len(keys) < 2:
            continue
        aliases = ", ".join(k.alias or k.ident for k in keys)
        for key in keys:
            del out.matched[key.ident]
            out.refused[key.ident] = (
                f"{aliases} are all held by one key, {key_id}, and each declared key must be a key of its own; "
                "the tool does not decide which declaration that key is. Point each alias back at its own key "
                f"(aws kms update-alias --alias-name {key.alias} --target-key-id KEY_ID), then plan again")
        claimed.discard(key_id)


def match_keys(want: DesiredStore, have: LiveStore) -> KeyMatch:
    """Match every declared key of ``want`` with at most one live key of ``have``."""
    out = KeyMatch()
    holders = {alias: k for k in have.keys for alias in k.aliases}
    claimed: set[str] = set()
    pending_fallback: list[DesiredKey] = []
    for key in want.keys:
        if key.xks_key_id:
            found = [k for k in have.keys if k.xks_key_id == key.xks_key_id]
            if len(found) == 1:
                out.matched[key.ident] = found[0]
                claimed.add(found[0].key_id)
            elif found:  # KMS does not allow it; never pick one
                out.refused[key.ident] = (
                    f"{len(found)} keys of the store ({', '.join(k.key_id for k in found)}) report XksKeyId "
                    f"{key.xks_key_id}; the tool does not choose between them")
        elif key.alias:
            holder = holders.get(key.alias)
            if holder is not None:
                out.matched[key.ident] = holder
                claimed.add(holder.key_id)
            else:
                pending_fallback.append(key)
    _refuse_shared_holders(want, out, claimed)
    for key in pending_fallback:  # the alias is held by no key of the store: the managed tag
        candidates = [k for k in have.keys if _tagged(k, key.alias or "") and k.key_id not in claimed]
        if len(candidates) == 1 and not candidates[0].pending_deletion:
            out.matched[key.ident] = candidates[0]
            claimed.add(candidates[0].key_id)
        elif candidates:
            listing = ", ".join(f"{k.key_id} ({k.key_state})" for k in sorted(candidates, key=lambda k: k.key_id))
            # KMS refuses an alias for a key pending deletion: cancel its deletion first
            cancel = ("cancel its deletion if it is pending (aws kms cancel-key-deletion --key-id KEY_ID), then "
                      if any(k.pending_deletion for k in candidates) else "")
            out.refused[key.ident] = (
                f"no key of the store holds {key.alias}, and {listing} carr{'y' if len(candidates) > 1 else 'ies'} "
                f"the tool's {MANAGED_TAG} tag for it; the tool does not guess which key is meant (and never "
                f"rescues a key that nothing names). Choose the key to keep: {cancel}point the alias at it "
                f"(aws kms create-alias --alias-name {key.alias} --target-key-id KEY_ID), then plan again; "
                "or take the key out of the manifest to apply the rest")
    declared_tags = {k.ident for k in want.keys}
    for live_key in have.keys:
        if live_key.key_id in claimed:
            continue
        tag = live_key.tag_dict.get(MANAGED_TAG)
        if tag in declared_tags:
            owner = out.matched.get(tag)
            where = f"{tag} is key {owner.key_id}" if owner is not None else f"{tag} is not matched"
            out.notes[live_key.key_id] = (
                f"it carries the tool's {MANAGED_TAG} tag for {tag}, but {where}: a duplicate (two applies at "
                "once without --lock-table) or the old key of a rotation")
    return out
