"""cases: normal form and host re-read as a browser reads the reported URL

Before #10 a host such as "3232235777" or "0x7f.1" was kept as a DNS name,
looked up, found "nxdomain" and the case counted as removed; a browser reads
it as the IPv4 address 192.168.1.1 or 127.0.0.1. kernel.urls now parses
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
import re

import sqlalchemy as sa
from ada_url import URL, HostType
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BATCH = 5_000
log = logging.getLogger("hostwatch.migrations")

# kernel.urls.normalise_url as it stood, frozen here: a migration must
# give the same result whatever the live code becomes (and must not import it).
_C0_OR_SPACE = "".join(map(chr, range(0x21)))
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_LABEL = re.compile(r"[a-z0-9_\-]{1,63}")
ROUTE_PREFIXES = ("/", "!")


class UrlError(ValueError):
    """A stored URL the rules refuse: the case keeps its old values."""


def normalise_url(raw: str) -> tuple[str, str]:
    """The normal form of ``raw`` and its host, or `UrlError`."""
    text = raw.strip(_C0_OR_SPACE).strip()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UrlError("URL is not valid Unicode") from None
    if _CONTROL.search(text):
        raise UrlError("control character in URL")
    match = _SCHEME.match(text)
    if match is None or match.group(1).lower() not in ("http", "https"):
        raise UrlError("scheme must be http or https")
    try:
        url = URL(text)
    except ValueError:
        raise UrlError("not a URL a browser would open") from None
    if url.username or url.password:
        raise UrlError("user name or password in URL")
    if url.port == "0":
        raise UrlError("port 0 cannot be connected to")
    host = url.hostname
    if url.host_type == HostType.IPV6:
        host = host.strip("[]")
    elif url.host_type == HostType.DEFAULT:
        host = host.rstrip(".")
        labels = host.split(".")
        if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            raise UrlError("host is not a DNS name that can be looked up")
    if not url.hash[1:].startswith(ROUTE_PREFIXES):
        url.hash = ""  # an anchor: the same document, the same case
    return url.href, host


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
            if new != (normalised, host):
                changes.append({"id": case_id, "url": new[0], "host": new[1]})
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
