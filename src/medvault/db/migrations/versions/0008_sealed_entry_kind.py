"""Chart entries: the clear `kind` column goes; an entry's kind was always in its sealed, signed body.

Revision 0001 creates the current schema (without the column) for a new database, so this only changes older
ones. Nothing is lost and nothing is decrypted: readers take the kind from the body they already opened. On
SQLite the table is rebuilt (batch mode); the old values may stay in free pages until the next VACUUM.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("chart_entries")}
    if "kind" in columns:
        with op.batch_alter_table("chart_entries") as batch:
            batch.drop_column("kind")
