"""the attribution of record goes by check time

``cases.attribution_id`` was the attribution of the case's highest check id
with an address; an older check log imported after crawling began could
take a case over (#10). It is now the attribution of the check with the
newest checked_at that reached an address, ties broken by check id
(store.of_record). This migration derives it again for every case. The SQL
is a copy of store.of_record's: migrations never import live code.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_OF_RECORD = (
    "UPDATE cases SET attribution_id = ("
    "SELECT a.id FROM attributions a JOIN checks c ON c.id = a.check_id "
    "WHERE a.case_id = cases.id AND a.ip IS NOT NULL "
    "ORDER BY c.checked_at DESC, c.id DESC LIMIT 1)")


def upgrade() -> None:
    op.get_bind().execute(sa.text(_OF_RECORD))


def downgrade() -> None:
    # The old rule (the highest check id with an address), as 0004 set it.
    op.get_bind().execute(sa.text(
        "UPDATE cases SET attribution_id = (SELECT a.id FROM attributions a "
        "WHERE a.case_id = cases.id AND a.ip IS NOT NULL ORDER BY a.check_id DESC LIMIT 1)"))
