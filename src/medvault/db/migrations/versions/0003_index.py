"""Search: the per-user sealed index key and the sealed index segments.

Revision 0001 creates the current schema for a new database, so this revision only changes databases made
before it and is a no-op on new ones.
"""

from alembic import op

from medvault.db.schema import search_keys, search_segments

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    bind = op.get_bind()
    search_keys.create(bind, checkfirst=True)
    search_segments.create(bind, checkfirst=True)
