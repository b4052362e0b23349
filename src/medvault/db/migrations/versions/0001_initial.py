"""Initial schema: users, invitations, sessions, records, record keys, audit, bans."""

from alembic import op

from medvault.db.schema import metadata

revision = "0001"
down_revision = None


def upgrade() -> None:
    # The first revision is the schema snapshot itself; later revisions alter it step by step.
    metadata.create_all(bind=op.get_bind())
