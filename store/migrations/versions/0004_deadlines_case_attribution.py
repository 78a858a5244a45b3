"""deadlines and the attribution of record: notices.due_at, orders.regime and
due_at, cases.attribution_id

Revision ID: 0004
Revises: 0003
"""
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# The deadline rules as kernel.deadlines had them, frozen here: a migration
# must compute the same whatever the live code becomes (and must not import it).
NOTICE_HOURS, ATKM_MAX_HOURS, TERRORIST_HOURS = 24, 12, 1
ATKM_ORDER, TERRORIST_1H = "atkm_order", "terrorist_1h"


def order_regime(issuer: str, legal_basis: str = "") -> str | None:
    basis = legal_basis.lower()
    if "2021/784" in basis or "tco" in basis.split() or "terror" in basis:
        return TERRORIST_1H
    if issuer.strip().upper() == "ATKM" or "kinderpornografisch" in issuer.lower():
        return ATKM_ORDER
    return None


def order_due(regime: str | None, issued_at: datetime, deadline_at: datetime) -> datetime:
    if regime is None:
        return deadline_at
    if regime == TERRORIST_1H:
        return issued_at + timedelta(hours=TERRORIST_HOURS)
    return min(deadline_at, issued_at + timedelta(hours=ATKM_MAX_HOURS))


def notice_due(sent_at: datetime) -> datetime:
    return sent_at + timedelta(hours=NOTICE_HOURS)


def _aware(value: object) -> datetime:
    if isinstance(value, str):  # SQLite hands back text
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC)


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("due_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("regime", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("due_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("attribution_id", BigId, nullable=True))
        batch.create_index("ix_cases_attribution_id", ["attribution_id"])

    bind = op.get_bind()
    notices = bind.execute(sa.text("SELECT id, sent_at FROM notices")).all()
    for start in range(0, len(notices), 5000):
        bind.execute(sa.text("UPDATE notices SET due_at = :due WHERE id = :id"),
                     [{"id": id_, "due": _naive(notice_due(_aware(sent)))}
                      for id_, sent in notices[start:start + 5000]])
    orders = bind.execute(sa.text(
        "SELECT id, issuer, legal_basis, issued_at, deadline_at FROM orders")).all()
    updates = []
    for id_, issuer, basis, issued, deadline in orders:
        regime = order_regime(issuer, basis or "")
        updates.append({"id": id_, "regime": regime,
                        "due": _naive(order_due(regime, _aware(issued), _aware(deadline)))})
    for start in range(0, len(updates), 5000):
        bind.execute(sa.text("UPDATE orders SET regime = :regime, due_at = :due WHERE id = :id"),
                     updates[start:start + 5000])
    # The attribution of record: the newest attributed check with an address.
    bind.execute(sa.text(
        "UPDATE cases SET attribution_id = (SELECT a.id FROM attributions a "
        "WHERE a.case_id = cases.id AND a.ip IS NOT NULL ORDER BY a.check_id DESC LIMIT 1)"))

    with op.batch_alter_table("notices") as batch:
        batch.alter_column("due_at", existing_type=sa.DateTime(), nullable=False)
        batch.create_index("ix_notices_due_at", ["due_at"])
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("due_at", existing_type=sa.DateTime(), nullable=False)
        batch.create_index("ix_orders_due_at", ["due_at"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_attribution_id")
        batch.drop_column("attribution_id")
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_due_at")
        batch.drop_column("due_at")
        batch.drop_column("regime")
    with op.batch_alter_table("notices") as batch:
        batch.drop_index("ix_notices_due_at")
        batch.drop_column("due_at")
