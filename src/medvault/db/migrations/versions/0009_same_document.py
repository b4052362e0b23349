"""Duplicate reviews: a "same document" decision keeps the pair's ids sealed under the chart key.

Revision 0001 creates the current schema for a new database, so this only changes older ones. Existing rows are
"keep both" decisions and stay as they are (no sealed ids).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("duplicate_reviews")}
    if "sealed" not in columns:
        op.add_column("duplicate_reviews", sa.Column("sealed", sa.LargeBinary, nullable=True))
