"""cases: the normal form keeps a single-page app's route fragment

Before #11 the normal form dropped every fragment, so a case reported as
``https://h/app/#/photo/21`` was checked at ``https://h/app/``: the app's
start page, not the reported photo. A fragment that starts with "/" or "!"
is now a route and part of the normal form (kernel.urls). This appends
the route, serialised as a browser writes it, to the stored normal form of
each case whose URL as reported carries one (the URL as reported is never
changed; the host does not change). Every report is its own case with its
own URL, so no case holds reports of two routes and none is split; the
cases rewritten are named in the log, because their earlier checks saw the
start page. Checks already made are evidence and stay as they are.

Self-contained on purpose: a migration must keep meaning what it meant when
it was written, so it does not import hostwatch's code (it uses ada-url,
the parser kernel.urls uses, directly).

Revision ID: 0009
Revises: 0008
"""
import logging

import sqlalchemy as sa
from ada_url import URL
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BATCH = 5_000
SHOWN_IDS = 200
log = logging.getLogger("hostwatch.migrations")

# As kernel.urls had them when this was written.
ROUTE_PREFIXES = ("/", "!")
_C0_OR_SPACE = "".join(map(chr, range(0x21)))


def route_fragment(reported: str) -> str | None:
    """The route of a URL as reported, "#" included, as a browser
    serialises it; None without one or when a browser would not open it."""
    try:
        url = URL(reported.strip(_C0_OR_SPACE).strip())
    except ValueError:
        return None
    return url.hash if url.hash[1:].startswith(ROUTE_PREFIXES) else None


def upgrade() -> None:
    bind = op.get_bind()
    last = 0
    rewritten: list[int] = []
    # Only URLs with a "#" can carry a route (LIKE: the same on SQLite and
    # PostgreSQL, no escaping needed for "#").
    while True:
        rows = bind.execute(sa.text(
            "SELECT id, url, url_normalised FROM cases WHERE id > :last AND url LIKE '%#%' "
            "ORDER BY id LIMIT :batch"), {"last": last, "batch": BATCH}).all()
        if not rows:
            break
        last = rows[-1][0]
        changes = []
        for case_id, url, normalised in rows:
            fragment = route_fragment(url)
            if fragment is None or "#" in normalised:
                continue  # no route, refused by a browser, or already kept
            changes.append({"id": case_id, "url": normalised + fragment})
        if changes:
            bind.execute(sa.text("UPDATE cases SET url_normalised = :url WHERE id = :id"),
                         changes)
            rewritten.extend(change["id"] for change in changes)
    if rewritten:
        shown = ", ".join(map(str, rewritten[:SHOWN_IDS]))
        more = f" and {len(rewritten) - SHOWN_IDS} more" if len(rewritten) > SHOWN_IDS else ""
        log.warning("0009: %d case(s) reported with a single-page app's route (#/..., #!...) "
                    "now keep it in their normal form, and the browser check opens it; their "
                    "earlier checks saw the app's start page: case %s%s", len(rewritten),
                    shown, more)


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT id, url_normalised FROM cases WHERE url_normalised LIKE '%#%'")).all()
    if rows:
        bind.execute(sa.text("UPDATE cases SET url_normalised = :url WHERE id = :id"),
                     [{"id": case_id, "url": normal.partition("#")[0]}
                      for case_id, normal in rows])
