"""One company, one hoster: which hosters row an attribution belongs to.

The hoster of record is named by one of three sources (the registry, the
RDAP registrant, the AS name), and the same company is often named by
different sources on different checks: RDAP answers on one night and is down
on the next, so one check is attributed from the AS name and the next from
RDAP. Both must land on one hosters row, or the company's cases are split
over two keys and an evidence pack claims the material moved between them.

`identity_of()` (pure) says what an attribution vouches for, as aliases
(`kernel.model.AliasKind`): only what the *deciding* source says, so an
RDAP-decided reseller inside a hoster's AS never takes the AS's name. A
hoster row is then found in this order (`HosterBook.row`):

1. the registry entry (alias ``registry``: its id);
2. the RDAP organisation handle, when RDAP decided and names one, unless
   the row carrying it is established in another country;
3. the company name, reduced by `kernel.orgnames` (same base, no
   conflicting legal form), among the names every source gave: RDAP
   registrant, AS name, registry legal name. A name match is refused when
   the countries of establishment differ or both rows carry different RDAP
   handles (two companies of one name), and when it is not unique.

A registry entry also takes over rows made before the registry knew the
company (same handle or name): they are merged into it (`store.hosters.
merge_hosters`), so a user's new registry entry leaves no duplicate. Every
alias is kept with the text the source wrote and when it was first seen: the
evidence of how each match was made (evidence packs list them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from enrichment.hosters import HosterDecision, HosterRegistry
from kernel.model import NAME_KINDS, AliasKind
from kernel.orgnames import OrgName, org_name, same_company
from store.hosters import SOURCE_RANK, add_alias, merge_hosters, reduced_alias
from store.models import Hoster, HosterAlias

__all__ = ["Claim", "HosterBook", "Identity", "Match", "identity_of"]

@dataclass(frozen=True)
class Claim:
    """One alias an attribution vouches for."""

    kind: AliasKind
    value: str
    seen_as: str
    base: str | None = None  # for names: the base without the legal form


@dataclass(frozen=True)
class Identity:
    """Who the hoster of one decision is, as far as its sources say."""

    legal_name: str
    source: str  # registry / rdap / asn_names: what named it
    country: str | None
    registry_id: str | None
    handle: str | None  # the RDAP organisation handle (RDAP decided)
    name: OrgName | None  # the deciding source's name, reduced
    claims: tuple[Claim, ...]


def _name_claim(kind: AliasKind, text: str | None) -> Claim | None:
    reduced = org_name(text)
    if reduced is None or text is None:
        return None
    return Claim(kind, reduced.full, text.strip(), reduced.base)


def identity_of(decision: HosterDecision, *, asn: int | None, as_name: str | None,
                rdap_org: str | None, rdap_org_handle: str | None,
                registry: HosterRegistry) -> Identity | None:
    """The identity a decision names (None: no hoster of record)."""
    if not decision.hoster:
        return None
    source = decision.sources.get("hoster", "none")
    claims: list[Claim | None] = []
    handle = rdap_org_handle.strip().upper() if rdap_org_handle and rdap_org_handle.strip() \
        else None
    entry = registry.get(decision.hoster_id) if decision.hoster_id else None
    if entry is not None:
        claims.append(Claim(AliasKind.REGISTRY, entry.id, entry.id))
        claims.append(_name_claim(AliasKind.LEGAL_NAME, entry.legal_name))
        if source == "registry:asn" and asn is not None:
            claims.append(Claim(AliasKind.ASN, str(asn), f"AS{asn}"))
        if source == "registry:rdap_org":
            claims.append(_name_claim(AliasKind.RDAP_ORG, rdap_org))
            if handle:
                claims.append(Claim(AliasKind.RDAP_HANDLE, handle, rdap_org_handle or handle))
        else:
            handle = None  # an address in a registered AS may be a customer's block
        return Identity(entry.legal_name, "registry", entry.country, entry.id, handle,
                        org_name(entry.legal_name), tuple(c for c in claims if c))
    if source == "rdap":
        org = _name_claim(AliasKind.RDAP_ORG, decision.hoster)
        claims.append(org)
        if handle:
            claims.append(Claim(AliasKind.RDAP_HANDLE, handle, rdap_org_handle or handle))
        named_as = _name_claim(AliasKind.AS_NAME, as_name)
        reduced = org_name(decision.hoster)
        if named_as is not None and reduced is not None and same_company(
                reduced, org_name(as_name) or reduced):
            claims.append(named_as)  # the AS name names the same company
        return Identity(decision.hoster, "rdap", decision.country, None, handle, reduced,
                        tuple(c for c in claims if c))
    claims.append(_name_claim(AliasKind.AS_NAME, decision.hoster))
    return Identity(decision.hoster, "asn_names", decision.country, None, None,
                    org_name(decision.hoster), tuple(c for c in claims if c))


@dataclass(frozen=True)
class Match:
    """The hosters row of an identity and how it was found."""

    row: Hoster
    how: str  # kept in the attribution's sources as ``hoster_identity``
    merged: bool = False  # other rows were merged into it (their ids are gone)


class HosterBook:
    """Finds or makes the hosters row of an identity, within one session."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.now = now

    def _by_alias(self, kind: AliasKind, value: str) -> Hoster | None:
        alias = self.session.scalars(select(HosterAlias).where(
            HosterAlias.kind == kind.value, HosterAlias.value == value)).first()
        return self.session.get(Hoster, alias.hoster_id) if alias is not None else None

    def _by_handle(self, identity: Identity) -> Hoster | None:
        """The row that carries this identity's RDAP organisation handle, unless
        it is established in another country: a registry's handle names one
        company, so a handle that comes with two countries was reused or lied
        about, and is no evidence that the two are one company."""
        assert identity.handle is not None
        row = self._by_alias(AliasKind.RDAP_HANDLE, identity.handle)
        if row is not None and row.country and identity.country \
                and row.country != identity.country:
            return None
        return row

    def _by_name(self, identity: Identity) -> tuple[list[Hoster], HosterAlias | None]:
        """Rows that may be the same company by name, and the alias that matched."""
        name = identity.name
        if name is None:
            return [], None
        aliases = self.session.scalars(select(HosterAlias).where(
            HosterAlias.base == name.base,
            HosterAlias.kind.in_([k.value for k in NAME_KINDS]))).all()
        found: dict[int, HosterAlias] = {}
        for alias in aliases:
            if same_company(name, reduced_alias(alias)):
                found.setdefault(alias.hoster_id, alias)
        rows = []
        for hoster_id in found:
            row = self.session.get(Hoster, hoster_id)
            if row is not None and self._compatible(row, identity):
                rows.append(row)
        exact = [r for r in rows if reduced_alias(found[r.id]).full == name.full]
        if len(rows) > 1 and len(exact) == 1:
            rows = exact
        return rows, (found[rows[0].id] if len(rows) == 1 else None)

    def _compatible(self, row: Hoster, identity: Identity) -> bool:
        """Whether a row found by name may be this identity's company."""
        if row.country and identity.country and row.country != identity.country:
            return False
        if identity.registry_id is not None and row.source == "registry" \
                and row.key != identity.registry_id:
            return False  # two registry entries are two companies
        if identity.handle is None:
            return True
        handles = self.session.scalars(select(HosterAlias.value).where(
            HosterAlias.hoster_id == row.id,
            HosterAlias.kind == AliasKind.RDAP_HANDLE.value)).all()
        return not handles or identity.handle in handles

    def row(self, identity: Identity) -> Match:
        """The row of ``identity`` (found, made or merged) and how it was matched."""
        row: Hoster | None = None
        how = ""
        merged = False
        if identity.registry_id is not None:
            row = self._by_alias(AliasKind.REGISTRY, identity.registry_id) or \
                self.session.scalars(select(Hoster).where(
                    Hoster.key == identity.registry_id)).first()
            how = f"registry entry {identity.registry_id}"
            if row is None:  # rows found below by handle or name merge into it
                row = self._new(identity)
                how = f"new hoster, registry entry {identity.registry_id}"
        if row is None and identity.handle is not None:
            row = self._by_handle(identity)
            how = f"RDAP organisation handle {identity.handle}" if row is not None else ""
        by_name, matched = self._by_name(identity)
        if row is None and matched is not None:
            row = by_name[0]
            how = (f"same company name as {matched.seen_as!r} ({matched.kind}, first seen "
                   f"{matched.first_seen:%Y-%m-%d})")
        if row is None:
            row = self._new(identity)
            how = f"new hoster, first named by {identity.source}"
        elif identity.registry_id is not None:  # the registry takes over older rows
            others = [r for r in by_name if r.id != row.id and r.source != "registry"]
            if identity.handle is not None:
                by_handle = self._by_handle(identity)
                if by_handle is not None and by_handle.id != row.id:
                    others.append(by_handle)
            for other in {o.id: o for o in others}.values():
                merge_hosters(self.session, row, other, self.now)
                how += f"; merged with the earlier hoster {other.key}"
                merged = True
        self._update(row, identity)
        for claim in identity.claims:
            add_alias(self.session, row.id, claim.kind, claim.value, claim.seen_as,
                      self.now, claim.base)
        return Match(row, how, merged)

    def _new(self, identity: Identity) -> Hoster:
        if identity.registry_id is not None:
            key = identity.registry_id
        else:
            name = identity.name
            base = name.base if name else identity.legal_name.casefold()
            tried = [f"org:{base}"]
            if name is not None and name.form:
                tried.append(f"org:{name.full}")
            if identity.country:
                tried.append(f"{tried[-1]} ({identity.country.lower()})")
            taken = set(self.session.scalars(select(Hoster.key).where(
                Hoster.key.like(f"org:{base}%"))))
            key = next((k for k in tried if k[:300] not in taken), None) or next(
                f"{tried[-1]} #{n}" for n in range(2, 10_000) if f"{tried[-1]} #{n}" not in taken)
        row = Hoster(key=key[:300], legal_name=identity.legal_name[:255],
                     country=identity.country, source=identity.source, asns=[], cdn=False,
                     updated_at=self.now)
        self.session.add(row)
        self.session.flush()
        return row

    def _update(self, row: Hoster, identity: Identity) -> None:
        """The best source's legal name and country; the registry's entry wins."""
        rank = SOURCE_RANK.get(identity.source, 9)
        if rank <= SOURCE_RANK.get(row.source, 9):
            row.legal_name = identity.legal_name[:255]
            row.source = identity.source
            row.country = identity.country or row.country
        else:
            row.country = row.country or identity.country
        row.updated_at = self.now
