"""Runs shared by several workers (#16): run_cases, run_workers

``run_cases`` holds one row per case checked in a run that workers share
through the queue (store.queue): a case's check and its row are written in
one transaction, and a second check of the same case in the same run (its
batch was handed on after a worker stalled) is dropped. ``run_workers``
lists each run's worker processes for `hostwatch status`. Single-process
runs write neither.

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "run_cases",
        sa.Column("run_id", BigId, sa.ForeignKey("crawl_runs.id"), primary_key=True),
        sa.Column("case_id", BigId, sa.ForeignKey("cases.id"), primary_key=True),
    )
    op.create_table(
        "run_workers",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("run_id", BigId, sa.ForeignKey("crawl_runs.id"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("run_id", "name"),
    )
    op.create_index("ix_run_workers_run_id", "run_workers", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_run_workers_run_id", table_name="run_workers")
    op.drop_table("run_workers")
    op.drop_table("run_cases")
