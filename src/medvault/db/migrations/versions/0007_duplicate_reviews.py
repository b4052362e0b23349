"""Duplicate reviews: near-duplicate pairs the owner chose to keep both of (as keyed hashes).

Revision 0001 creates the current schema for a new database, so this only changes older ones.
"""

from alembic import op

from medvault.db.schema import duplicate_reviews

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    duplicate_reviews.create(op.get_bind(), checkfirst=True)
