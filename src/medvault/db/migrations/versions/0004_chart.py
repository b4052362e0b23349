"""Chart workspace: the wrapped chart keys and the sealed, signed chart entries.

Revision 0001 creates the current schema for a new database, so this revision only changes databases made
before it and is a no-op on new ones.
"""

from alembic import op

from medvault.db.schema import chart_entries, chart_keys

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    bind = op.get_bind()
    chart_keys.create(bind, checkfirst=True)
    chart_entries.create(bind, checkfirst=True)
