"""perceptual matching (#12): checks.pdq_quality, pdq_distance; cases.ref_pdq_source,
ref_pdq_check_id

A case's reference PDQ now comes from the report or is learned from the first
check whose SHA-256 matched the reported file; ``ref_pdq_source`` says which.
Every PDQ stored before this revision came from an import: "report".
Checks from before keep no PDQ fields (NULL), and their record hashes are
unchanged: the chain covers a PDQ field only when it is set (store.checks).

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("checks") as batch:
        batch.add_column(sa.Column("pdq_quality", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("pdq_distance", sa.Integer(), nullable=True))
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("ref_pdq_source", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("ref_pdq_check_id", BigId, nullable=True))
    op.get_bind().execute(sa.text(
        "UPDATE cases SET ref_pdq_source = 'report' WHERE ref_pdq IS NOT NULL"))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("ref_pdq_check_id")
        batch.drop_column("ref_pdq_source")
    with op.batch_alter_table("checks") as batch:
        batch.drop_column("pdq_distance")
        batch.drop_column("pdq_quality")
