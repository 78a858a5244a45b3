"""Stored test data built by hand: a hoster of the registry, and a case with
its checks, its attribution of record, its notices and orders, as the crawl,
enrichment and the hotline's records would have left them in the store.

Both add to an open session (``with store.transaction() as session:``), so a
test builds many cases in one transaction and changes what it needs beside
them. (tests/crawler/conftest.py's ``add_cases`` makes unchecked cases for a
crawl to check; these are cases with a history already.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session

from kernel.deadlines import notice_due
from kernel.model import Verdict
from kernel.state import derive_state
from store.models import Attribution, Case, Check, Hoster, Notice, Order

__all__ = ["add_case", "add_hoster", "self_signed"]


def add_hoster(session: Session, key: str, legal_name: str, country: str | None, *,
               updated_at: datetime, asns: Sequence[int] = (64500,),
               abuse: str | None = None) -> Hoster:
    """A hosting company of the registry (abuse address ``abuse@KEY.test``
    unless given)."""
    hoster = Hoster(key=key, legal_name=legal_name, country=country, asns=list(asns),
                    dsa_role="hosting", abuse=abuse or f"abuse@{key}.test", cdn=False,
                    source="registry", updated_at=updated_at)
    session.add(hoster)
    session.flush()
    return hoster


def add_case(session: Session, external_id: str, reported_at: datetime,
             history: Sequence[tuple[datetime, Verdict]], *, url: str | None = None,
             host: str | None = None, check_fields: Mapping[str, Any] | None = None,
             hoster: Hoster | None = None, attribution: Mapping[str, Any] | None = None,
             notices: Iterable[tuple[datetime, str]] = (),
             orders: Iterable[Mapping[str, Any]] = ()) -> Case:
    """A case reported (and imported) at ``reported_at``, checked as ``history``
    says: (checked_at, verdict) in time order, each with ``check_fields``
    besides. Its state is derived from its checks (kernel.state); of two
    checks at one instant the first counts for the state, while the deadline
    rules (and the store's views) see both.

    ``url`` is ``https://EXTERNAL_ID.test/x`` unless given, ``host`` the
    URL's host unless given.

    With ``hoster`` or ``attribution``, the last check is attributed, and that
    attribution is the case's of record: to ``hoster`` (its id, legal name
    and country), with the ``attribution`` fields besides (jurisdiction,
    dutch, server_country...; attributed at ``reported_at`` unless given).

    ``notices``: (sent_at, recipient) of each notice, due by the 24-hour norm;
    ``orders``: the fields of each removal order.
    """
    url = url if url is not None else f"https://{external_id.lower()}.test/x"
    host = host if host is not None else url.split("/")[2]
    first_of_each_instant = list(dict(reversed(history)).items())[::-1]
    state = derive_state(reported_at, first_of_each_instant)
    case = Case(source="t", external_id=external_id, url=url, url_normalised=url, host=host,
                category="csam", reported_at=reported_at, imported_at=reported_at,
                state=state.state.value, last_verdict=state.last_verdict,
                last_checked_at=state.last_checked_at, last_served_at=state.last_served_at,
                removed_after=state.removed_after, removed_at=state.removed_at,
                reappearances=state.reappearances, check_count=state.checks)
    session.add(case)
    session.flush()
    checks = [Check(case_id=case.id, checked_at=when, method="http", verdict=verdict.value,
                    url=url, tool_version="t", prev_hash="0" * 64,
                    record_hash=uuid.uuid4().hex * 2, **(check_fields or {}))
              for when, verdict in history]
    session.add_all(checks)
    session.flush()
    if hoster is not None or attribution is not None:
        of_hoster = {} if hoster is None else {
            "hoster_id": hoster.id, "hoster": hoster.legal_name, "hoster_country": hoster.country}
        row = Attribution(**({"check_id": checks[-1].id, "case_id": case.id,
                              "attributed_at": reported_at, "ip": "192.0.2.1", "sources": {}}
                             | of_hoster | dict(attribution or {})))
        session.add(row)
        session.flush()
        case.attribution_id = row.id
    for sent_at, recipient in notices:
        session.add(Notice(case_id=case.id, sent_at=sent_at, recipient=recipient,
                           due_at=notice_due(sent_at)))
    for fields in orders:
        session.add(Order(case_id=case.id, **fields))
    session.flush()
    return case


def self_signed(folder: Path, name: x509.GeneralName) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (`x509.DNSName` or
    `x509.IPAddress`), valid for an hour around now, and its unencrypted key:
    PEM files ``cert.pem`` and ``key.pem`` in ``folder``. It is its own CA:
    a client trusts it by loading ``cert.pem``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostwatch test")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([name]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
