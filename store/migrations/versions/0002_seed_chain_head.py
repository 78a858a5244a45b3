"""seed the chain head row, so concurrent first writers lock a row that exists

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    bind = op.get_bind()
    present = bind.execute(sa.text("SELECT count(*) FROM chain_head WHERE id = 1")).scalar()
    if not present:
        last = bind.execute(sa.text(
            "SELECT id, record_hash FROM checks ORDER BY id DESC LIMIT 1")).first()
        bind.execute(sa.text("INSERT INTO chain_head (id, record_hash, check_id) "
                             "VALUES (1, :h, :c)"),
                     {"h": last[1] if last else GENESIS, "c": last[0] if last else None})


def downgrade() -> None:
    pass
