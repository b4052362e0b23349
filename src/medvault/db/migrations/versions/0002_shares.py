"""Sharing: the shares table and the share each wrapped record key belongs to.

Revision 0001 creates the current schema for a new database, so this revision only changes databases made
before it and is a no-op on new ones.
"""

import sqlalchemy as sa
from alembic import op

from medvault.db.schema import shares

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    bind = op.get_bind()
    shares.create(bind, checkfirst=True)
    columns = {c["name"] for c in sa.inspect(bind).get_columns("record_keys")}
    if "share_id" not in columns:
        with op.batch_alter_table("record_keys") as batch:
            batch.add_column(sa.Column("share_id", sa.String(36), nullable=True))
