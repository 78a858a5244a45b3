"""The attribution of record of a case: the one rule, used by every writer.

A case's hoster of record (``cases.attribution_id``) is the attribution of
its check with the newest ``checked_at`` that reached an address (an
attribution with an ``ip``, of a check whose verdict is not one of
`NO_ADDRESS`), ties broken by the higher check id. The check
id only says in which order checks reached the store: an older check log
imported after crawling began gets higher ids than the crawl's newer checks,
and must not take over the case (#10). A check that reached no address
(``nxdomain``, refused before connecting) says nothing of who hosts the
material and keeps the one before. Its attribution may still hold an
address (looked up in DNS when attributed, the private address a redirect
named and the guard refused, an address an old log wrote beside
``nxdomain``): the verdict says the crawler reached none, so the check
cannot name the hoster, or a hoster could make its cases unattributed by
pointing them at 10.0.0.1.

Enrichment applies the rule whenever it attributes checks, `import-checks`
whenever it adds checks to a case, and migration 0006 re-derives every case
of an older store (it holds its own copy of the SQL, as migrations must).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ScalarSelect, select, update
from sqlalchemy.orm import Session

from kernel.model import Verdict
from store.models import Attribution, Case, Check

__all__ = ["NO_ADDRESS", "of_record_query", "set_attributions_of_record"]

NO_ADDRESS = frozenset({Verdict.NXDOMAIN, Verdict.DNS_ERROR, Verdict.BLOCKED_ADDRESS})
"""Verdicts of checks that got no address the crawler could connect to."""

_CHUNK = 500  # case ids per UPDATE ... IN (...)


def of_record_query() -> ScalarSelect[int]:
    """The id of the attribution of record of the outer ``cases`` row."""
    return (select(Attribution.id)
            .join(Check, Check.id == Attribution.check_id)
            .where(Attribution.case_id == Case.id, Attribution.ip.is_not(None),
                   Check.verdict.not_in(sorted(v.value for v in NO_ADDRESS)))
            .order_by(Check.checked_at.desc(), Check.id.desc())
            .limit(1).scalar_subquery())


def set_attributions_of_record(session: Session, case_ids: Iterable[int]) -> None:
    """Derive ``cases.attribution_id`` of ``case_ids`` again from their attributions."""
    ids = sorted(set(case_ids))
    newest = of_record_query()
    for start in range(0, len(ids), _CHUNK):
        session.execute(update(Case).where(Case.id.in_(ids[start:start + _CHUNK]))
                        .values(attribution_id=newest))
