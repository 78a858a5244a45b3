"""RDAP reseller (#14): networks.reseller, networks.reseller_handle,
attributions.rdap_reseller

The third party through which an address block was registered (RFC 9083's
entity role ``reseller``), where the RDAP answer names one: cached with the
rest of the answer in networks, and frozen with the rest of a check's
attribution, beside the AS and the RDAP holder. Networks cached and checks
attributed before this revision say nothing of it (NULL); a cached answer
learns it when it is next fetched, an attribution never.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("networks") as batch:
        batch.add_column(sa.Column("reseller", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("reseller_handle", sa.String(length=255), nullable=True))
    with op.batch_alter_table("attributions") as batch:
        batch.add_column(sa.Column("rdap_reseller", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attributions") as batch:
        batch.drop_column("rdap_reseller")
    with op.batch_alter_table("networks") as batch:
        batch.drop_column("reseller_handle")
        batch.drop_column("reseller")
