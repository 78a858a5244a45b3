"""checks: the per-case index also holds the id and the verdict

The hoster report judges every deadline from the last decisive check before
it and the first after it (reports.hosters._Sql.deadlines). With the id and
the verdict in the index those lookups read the index only, never the table:
on a store of 10,000,000 checks this took the deadline query on PostgreSQL
from about 25 s to 15 s (BENCHMARKS.md). The new index replaces
ix_checks_case_time, whose columns it starts with.

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("checks") as batch:
        batch.create_index("ix_checks_case_time_verdict",
                           ["case_id", "checked_at", "id", "verdict"], unique=False)
        batch.drop_index("ix_checks_case_time")


def downgrade() -> None:
    with op.batch_alter_table("checks") as batch:
        batch.create_index("ix_checks_case_time", ["case_id", "checked_at"], unique=False)
        batch.drop_index("ix_checks_case_time_verdict")
