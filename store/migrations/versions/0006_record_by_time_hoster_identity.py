"""the attribution of record goes by check time; one hoster per company

1. ``cases.attribution_id`` was the attribution of the case's highest check
   id with an address; an older check log imported after crawling began
   could take a case over (#10). It is now the attribution of the check with
   the newest checked_at that reached an address (not nxdomain, dns_error
   or blocked_address), ties broken by check id (store.of_record), derived
   again here for every case.
2. Hosters get aliases (``hoster_aliases``: how each source names them) and
   networks keep the RDAP holder's handle (``networks.org_handle``). Rows an
   older store holds twice for one company (``asn_names:x`` and ``rdap:x``,
   named once by the AS name and once by RDAP) are merged: same reduced name,
   no conflicting legal form or country. The merged row's attributions point
   at the survivor, whose key becomes ``org:<name>``; every older key stays
   findable as an alias of kind ``key``.

Migrations never import live code: the SQL of store.of_record and the name
reduction of kernel.orgnames are copied here as they were at 0006.

Revision ID: 0006
Revises: 0005
"""
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_OF_RECORD = (
    "UPDATE cases SET attribution_id = ("
    "SELECT a.id FROM attributions a JOIN checks c ON c.id = a.check_id "
    "WHERE a.case_id = cases.id AND a.ip IS NOT NULL "
    # A check that reached no address never names the hoster (store.of_record).
    "AND c.verdict NOT IN ('blocked_address', 'dns_error', 'nxdomain') "
    "ORDER BY c.checked_at DESC, c.id DESC LIMIT 1)")

# kernel.orgnames at 0006.
_FORMS = {
    "bv": "bv", "nv": "nv", "vof": "vof", "bvba": "bvba", "sprl": "sprl", "cv": "cv",
    "gmbh": "gmbh", "mbh": "mbh", "ag": "ag", "kg": "kg", "ug": "ug", "ev": "ev", "se": "se",
    "ltd": "ltd", "limited": "ltd", "plc": "plc", "llp": "llp", "lp": "lp",
    "inc": "inc", "incorporated": "inc", "llc": "llc", "corp": "corp",
    "corporation": "corp", "co": "co", "pte": "pte", "pty": "pty",
    "sa": "sa", "sas": "sas", "sasu": "sasu", "sarl": "sarl", "srl": "srl", "spa": "spa",
    "sl": "sl", "slu": "slu", "lda": "lda", "sro": "sro", "zoo": "zoo", "sp": "sp",
    "ab": "ab", "oy": "oy", "oyj": "oyj", "aps": "aps", "kft": "kft", "zrt": "zrt",
    "ooo": "ooo", "doo": "doo", "kk": "kk",
}
_NOT_WORD = re.compile(r"[\W_]+")
_RANK = {"registry": 0, "rdap": 1, "asn_names": 2}


def _reduce(name):
    text = unicodedata.normalize("NFKD", (name or "").casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    words = _NOT_WORD.sub(" ", text).split()
    run = 0
    while run < len(words) and len(words[-1 - run]) == 1:
        run += 1
    for size in range(min(run, len(words) - 1), 1, -1):
        if "".join(words[-size:]) in _FORMS:
            words = [*words[:-size], "".join(words[-size:])]
            break
    form: list[str] = []
    while len(words) > 1 and words[-1] in _FORMS:
        form.insert(0, _FORMS[words.pop()])
    if not words:
        return None
    return " ".join(words), " ".join(form) or None


def _same(a, b):
    return a[0] == b[0] and (a[1] is None or b[1] is None or a[1] == b[1])


def _full(reduced):
    return f"{reduced[0]} {reduced[1]}" if reduced[1] else reduced[0]


def upgrade() -> None:
    op.get_bind().execute(sa.text(_OF_RECORD))
    with op.batch_alter_table("networks") as batch:
        batch.add_column(sa.Column("org_handle", sa.String(length=255), nullable=True))
    op.create_table(
        "hoster_aliases",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("hoster_id", BigId, sa.ForeignKey("hosters.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=300), nullable=False),
        sa.Column("base", sa.String(length=300), nullable=True),
        sa.Column("seen_as", sa.String(length=300), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("kind", "value", name="uq_hoster_aliases_kind_value"),
    )
    op.create_index("ix_hoster_aliases_hoster_id", "hoster_aliases", ["hoster_id"])
    op.create_index("ix_hoster_aliases_base", "hoster_aliases", ["base"])
    _merge_duplicates(op.get_bind())


def _merge_duplicates(bind) -> None:
    """Aliases for every hoster; rows of one company merged into one."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [dict(r._mapping) for r in bind.execute(sa.text(
        "SELECT id, key, legal_name, source, country, updated_at FROM hosters"))]
    # Registry rows first: they survive; then the best source, then the oldest.
    rows.sort(key=lambda r: (_RANK.get(r["source"], 9), r["id"]))
    survivors: list[tuple[dict[str, Any], tuple[str, str | None] | None]] = []
    # (kind, value) -> (hoster id, base, seen_as, first_seen)
    aliases: dict[tuple[str, str], tuple[int, str | None, str, datetime]] = {}
    keys = {r["key"] for r in rows}
    for row in rows:
        reduced = _reduce(row["legal_name"])
        seen = row["updated_at"] or now
        kind = {"registry": "legal_name", "rdap": "rdap_org"}.get(row["source"], "as_name")
        survivor = None
        if reduced is not None and row["source"] != "registry":
            for other, other_name in survivors:
                if other_name is not None and _same(reduced, other_name) and not (
                        row["country"] and other["country"]
                        and row["country"] != other["country"]):
                    survivor = other
                    break
        target = survivor or row
        if reduced is not None:
            aliases.setdefault((kind, _full(reduced)),
                               (target["id"], reduced[0], row["legal_name"], seen))
        if row["source"] == "registry":
            aliases.setdefault(("registry", row["key"]), (row["id"], None, row["key"], seen))
        if survivor is None:
            survivors.append((row, reduced))
            if row["source"] != "registry" and reduced is not None \
                    and not row["key"].startswith("org:"):
                new_key = next(k for k in (f"org:{reduced[0]}", f"org:{_full(reduced)}",
                                           f"org:{_full(reduced)} #{row['id']}")
                               if k not in keys)
                keys.add(new_key)
                aliases.setdefault(("key", row["key"].casefold()),
                                   (row["id"], None, row["key"], now))
                bind.execute(sa.text("UPDATE hosters SET key = :key WHERE id = :id"),
                             {"key": new_key[:300], "id": row["id"]})
            continue
        bind.execute(sa.text("UPDATE attributions SET hoster_id = :to WHERE hoster_id = :id"),
                     {"to": survivor["id"], "id": row["id"]})
        aliases.setdefault(("key", row["key"].casefold()),
                           (survivor["id"], None, row["key"], now))
        if _RANK.get(row["source"], 9) < _RANK.get(survivor["source"], 9):
            bind.execute(sa.text("UPDATE hosters SET legal_name = :name, source = :source "
                                 "WHERE id = :id"),
                         {"name": row["legal_name"], "source": row["source"],
                          "id": survivor["id"]})
        bind.execute(sa.text("UPDATE hosters SET country = COALESCE(country, :country) "
                             "WHERE id = :id"), {"country": row["country"], "id": survivor["id"]})
        bind.execute(sa.text("DELETE FROM hosters WHERE id = :id"), {"id": row["id"]})
    if aliases:
        bind.execute(sa.text(
            "INSERT INTO hoster_aliases (hoster_id, kind, value, base, seen_as, first_seen) "
            "VALUES (:hoster_id, :kind, :value, :base, :seen_as, :first_seen)"),
            [{"hoster_id": hoster_id, "kind": kind, "value": value[:300],
              "base": base[:300] if base else None, "seen_as": (seen_as or "")[:300],
              "first_seen": first_seen}
             for (kind, value), (hoster_id, base, seen_as, first_seen) in aliases.items()])


def downgrade() -> None:
    # Merged rows stay merged (their attributions point at one row); the
    # aliases and handles go, and the record is derived by the old rule
    # (the highest check id with an address), as 0004 set it.
    op.drop_index("ix_hoster_aliases_base", table_name="hoster_aliases")
    op.drop_index("ix_hoster_aliases_hoster_id", table_name="hoster_aliases")
    op.drop_table("hoster_aliases")
    with op.batch_alter_table("networks") as batch:
        batch.drop_column("org_handle")
    op.get_bind().execute(sa.text(
        "UPDATE cases SET attribution_id = (SELECT a.id FROM attributions a "
        "WHERE a.case_id = cases.id AND a.ip IS NOT NULL ORDER BY a.check_id DESC LIMIT 1)"))
