"""cases: normal form and host re-read as a browser reads the reported URL

Before #10 a host such as "3232235777" or "0x7f.1" was kept as a DNS name,
looked up, found "nxdomain" and the case counted as removed; a browser reads
it as the IPv4 address 192.168.1.1 or 127.0.0.1. hostwatch.urls now parses
reported URLs as the WHATWG URL Standard does. This rewrites each stored
case's url_normalised and host from its URL as reported (which is never
changed), so that stored cases are checked where a browser would go and
grouped with the cases imported from now on. A URL the new rules refuse
keeps its old values and is named in the log. Checks already made are
evidence and stay as they are.

Revision ID: 0008
Revises: 0007
"""
import logging

import sqlalchemy as sa
from alembic import op

from hostwatch.urls import UrlError, normalise_url

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BATCH = 5_000
log = logging.getLogger("hostwatch.migrations")


def upgrade() -> None:
    bind = op.get_bind()
    last = 0
    rewritten = 0
    refused: list[str] = []
    while True:
        rows = bind.execute(sa.text(
            "SELECT id, url, url_normalised, host FROM cases WHERE id > :last "
            "ORDER BY id LIMIT :batch"), {"last": last, "batch": BATCH}).all()
        if not rows:
            break
        last = rows[-1][0]
        changes = []
        for case_id, url, normalised, host in rows:
            try:
                new = normalise_url(url)
            except UrlError as exc:
                refused.append(f"case {case_id}: {exc}")
                continue
            if (new.url, new.host) != (normalised, host):
                changes.append({"id": case_id, "url": new.url, "host": new.host})
        if changes:
            bind.execute(sa.text("UPDATE cases SET url_normalised = :url, host = :host "
                                 "WHERE id = :id"), changes)
            rewritten += len(changes)
    if rewritten:
        log.warning("0008: %d case(s) now read as a browser reads their URL "
                    "(normal form and host rewritten)", rewritten)
    for line in refused[:100]:
        log.warning("0008: kept as stored, %s", line)
    if len(refused) > 100:
        log.warning("0008: ... and %d more kept as stored", len(refused) - 100)


def downgrade() -> None:
    # The old normal forms are not kept: they were wrong for numeric hosts.
    pass
