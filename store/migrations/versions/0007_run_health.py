"""run health: crawl_runs.health, health_reason, controls; cases.last_counted_at,
unconfirmed_checks (#10: a broken vantage point removes nothing)

Runs from before this revision were counted as healthy and stay so. A case's
``last_counted_at`` (the scheduler's clock) is its newest check that reached an
address; ``hostwatch update`` re-derives it like every other derived column.
The due index moves from last_checked_at to last_counted_at.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("crawl_runs") as batch:
        batch.add_column(sa.Column("health", sa.String(length=16), nullable=False,
                                   server_default="healthy"))
        batch.add_column(sa.Column("health_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("controls", sa.JSON(), nullable=True))
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("last_counted_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("unconfirmed_checks", sa.Integer(), nullable=False,
                                   server_default="0"))
    op.get_bind().execute(sa.text(
        "UPDATE cases SET last_counted_at = (SELECT max(c.checked_at) FROM checks c "
        "WHERE c.case_id = cases.id AND c.verdict <> 'blocked_address')"))
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_due")
        batch.create_index("ix_cases_due", ["state", "last_counted_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_due")
        batch.create_index("ix_cases_due", ["state", "last_checked_at"], unique=False)
        batch.drop_column("unconfirmed_checks")
        batch.drop_column("last_counted_at")
    with op.batch_alter_table("crawl_runs") as batch:
        batch.drop_column("controls")
        batch.drop_column("health_reason")
        batch.drop_column("health")
