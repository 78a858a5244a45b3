"""server location (#14): attributions.server_country, server_country_source,
geoip_built_at

Where the serving address is located, frozen with the rest of a check's
attribution: the country from the IP geolocation database named by
HOSTWATCH_GEOIP_DB (``server_country_source`` "geoip", ``geoip_built_at`` the
database's build time) or, without one, the RDAP network's country ("rdap").
Attributions made before this revision say nothing of it (NULL): a later
database never rewrites an old check.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attributions") as batch:
        batch.add_column(sa.Column("server_country", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("server_country_source", sa.String(length=16),
                                   nullable=True))
        batch.add_column(sa.Column("geoip_built_at", sa.DateTime(),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attributions") as batch:
        batch.drop_column("geoip_built_at")
        batch.drop_column("server_country_source")
        batch.drop_column("server_country")
