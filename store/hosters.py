"""Hosters in the store: the one lookup behind every --hoster option, and merging.

`find_hoster()` finds the hoster a user names by its key, a key it had before
a merge, its legal name, or any name a source gave it (its aliases, compared
as `kernel.orgnames` reduces company names). It raises `HosterNotFound`
(with close matches) or `HosterAmbiguous` (with every candidate): the same
errors, and so the same messages and exit codes, for `report evidence` and
`export xarf`.

`merge_hosters()` makes two rows that turned out to be one company one row.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kernel.errors import StoreError
from kernel.model import NAME_KINDS, AliasKind
from kernel.orgnames import OrgName, org_name, same_company
from store.models import Attribution, Hoster, HosterAlias

__all__ = ["SOURCE_RANK", "HosterAmbiguous", "HosterLookupError", "HosterNotFound", "add_alias",
           "find_hoster", "merge_hosters", "reduced_alias"]

# Which source names a hoster best (its legal name and country): lower is better.
SOURCE_RANK = {"registry": 0, "rdap": 1, "asn_names": 2}


class HosterLookupError(StoreError):
    """A --hoster value names no single hoster."""


class HosterNotFound(HosterLookupError):
    def __init__(self, wanted: str, close: Sequence[Hoster], any_hosters: bool) -> None:
        if close:
            hint = "close matches: " + ", ".join(f"{h.legal_name} (key {h.key})"
                                                 for h in close)
        elif any_hosters:
            hint = "no close match (see `hostwatch cases --json` for the hosters of record)"
        else:
            hint = "the store knows no hosters yet (run `hostwatch enrich` first)"
        super().__init__(f"no hoster with key or name {wanted!r}; {hint}")
        self.wanted = wanted
        self.close = [h.key for h in close]


class HosterAmbiguous(HosterLookupError):
    def __init__(self, wanted: str, candidates: Sequence[Hoster]) -> None:
        listed = "; ".join(f"{h.key} ({h.legal_name})" for h in candidates)
        super().__init__(f"hoster {wanted!r} is ambiguous: {len(candidates)} hosters match "
                         f"({listed}); give the key of one")
        self.wanted = wanted
        self.candidates = [(h.key, h.legal_name) for h in candidates]


def find_hoster(session: Session, wanted: str) -> Hoster:
    """The one hoster ``wanted`` names (key, former key, legal name or alias; any case)."""
    folded = " ".join(wanted.split()).casefold()
    hosters = {h.id: h for h in session.scalars(select(Hoster).order_by(Hoster.key))}
    for hoster in hosters.values():  # a key names one hoster, whatever else matches
        if hoster.key.casefold() == folded:
            return hoster
    aliases = list(session.scalars(select(HosterAlias)))
    for alias in aliases:
        if alias.kind in (AliasKind.KEY, AliasKind.REGISTRY) and alias.value.casefold() == folded:
            return hosters[alias.hoster_id]
    named = org_name(wanted)
    found: dict[int, Hoster] = {}
    for hoster in hosters.values():
        if hoster.legal_name.casefold() == folded:
            found[hoster.id] = hoster
    for alias in aliases:
        if alias.seen_as.casefold() == folded or (
                named is not None and alias.kind in NAME_KINDS
                and same_company(named, reduced_alias(alias))):
            found[alias.hoster_id] = hosters[alias.hoster_id]
    if len(found) == 1:
        return next(iter(found.values()))
    if found:
        raise HosterAmbiguous(wanted, sorted(found.values(), key=lambda h: h.key))
    by_text: dict[str, set[int]] = {}
    for hoster in hosters.values():
        for text in (hoster.key, hoster.legal_name):
            by_text.setdefault(text.casefold(), set()).add(hoster.id)
    close_texts = difflib.get_close_matches(folded, list(by_text), n=5, cutoff=0.6)
    close_texts += [t for t in by_text if folded and folded in t and t not in close_texts]
    close_ids = sorted({i for t in close_texts for i in by_text[t]},
                       key=lambda i: hosters[i].legal_name)
    raise HosterNotFound(wanted, [hosters[i] for i in close_ids[:8]], bool(hosters))


def reduced_alias(alias: HosterAlias) -> OrgName:
    """The reduced name a name alias holds (``value`` = base, then the form)."""
    base = alias.base or alias.value
    return OrgName(base, alias.value[len(base):].strip() or None)


def add_alias(session: Session, hoster_id: int, kind: AliasKind, value: str, seen_as: str,
              now: datetime, base: str | None = None) -> bool:
    """Record that a source names hoster ``hoster_id`` so; False if that is known."""
    known = session.scalars(select(HosterAlias).where(
        HosterAlias.kind == kind.value, HosterAlias.value == value[:300])).first()
    if known is not None:
        return False
    session.add(HosterAlias(hoster_id=hoster_id, kind=kind.value, value=value[:300],
                            base=base[:300] if base is not None else None,
                            seen_as=seen_as[:300], first_seen=now))
    session.flush()
    return True


def merge_hosters(session: Session, survivor: Hoster, duplicate: Hoster, now: datetime) -> None:
    """Make ``duplicate`` part of ``survivor``: one company, one row.

    Its attributions point at the survivor (their frozen texts stay as they
    were written), its aliases move over, and its key stays findable as an
    alias of kind ``key``.
    """
    if survivor.id == duplicate.id:
        return
    session.execute(update(Attribution).where(Attribution.hoster_id == duplicate.id)
                    .values(hoster_id=survivor.id))
    for alias in list(session.scalars(select(HosterAlias).where(
            HosterAlias.hoster_id == duplicate.id))):
        alias.hoster_id = survivor.id
    session.flush()
    key = duplicate.key
    if SOURCE_RANK.get(duplicate.source, 9) < SOURCE_RANK.get(survivor.source, 9):
        survivor.legal_name, survivor.source = duplicate.legal_name, duplicate.source
    survivor.country = survivor.country or duplicate.country
    survivor.abuse = survivor.abuse or duplicate.abuse
    survivor.dsa_role = survivor.dsa_role or duplicate.dsa_role
    survivor.asns = sorted(set(survivor.asns or []) | set(duplicate.asns or []))
    survivor.updated_at = now
    session.delete(duplicate)
    session.flush()
    add_alias(session, survivor.id, AliasKind.KEY, key.casefold(), key, now)
