"""Duplicates and versions: the keyed content hash and the `supersedes` link (one successor) on records.

Revision 0001 creates the current schema for a new database, so this only changes older ones (a no-op when
the columns and the uniqueness of `supersedes` already exist).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    columns = {c["name"] for c in inspector.get_columns("records")}
    if "dup_hash" not in columns:
        op.add_column("records", sa.Column("dup_hash", sa.String(64), nullable=True))
    if "supersedes" not in columns:
        op.add_column("records", sa.Column("supersedes", sa.String(36), nullable=True))
    unique = [u["column_names"] for u in inspector.get_unique_constraints("records")]
    unique += [i["column_names"] for i in inspector.get_indexes("records") if i.get("unique")]
    if ["supersedes"] not in unique:
        op.create_index("ix_records_supersedes", "records", ["supersedes"], unique=True)
