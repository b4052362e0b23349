"""Audit checkpoints: patients' signatures over the head of the audit chain.

Revision 0001 creates the current schema for a new database, so this only changes older ones.
"""

from alembic import op

from medvault.db.schema import audit_checkpoints

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    audit_checkpoints.create(op.get_bind(), checkfirst=True)
