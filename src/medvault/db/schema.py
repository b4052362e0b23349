"""Table definitions. Ciphertext columns are LargeBinary; ids are UUID text so both back-ends agree."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("profession", String(64)),
    Column("status", String(16), nullable=False),  # invited | active | disabled
    Column("created_at", Float, nullable=False),
    Column("salt", LargeBinary),
    Column("verifier_hash", LargeBinary),
    Column("x25519_public", LargeBinary),
    Column("ed25519_public", LargeBinary),
    Column("public_signature", LargeBinary),
    Column("keys_by_password", LargeBinary),
    Column("keys_by_recovery", LargeBinary),
    Column("retired_keys", LargeBinary),  # keys before an administrator's reset, under the old recovery key
    Column("key_generation", Integer, nullable=False, default=0),
)

invitations = Table(
    "invitations",
    metadata,
    Column("code_hash", LargeBinary, primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used", Boolean, nullable=False, default=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", LargeBinary, primary_key=True),  # SHA-256 of the cookie token
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("keys_by_session", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("ip", String(64), nullable=False),
)

records = Table(
    "records",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("owner_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("uploader_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("blob", String(80), nullable=False),
    Column("stream_header", LargeBinary, nullable=False),
    Column("sealed_metadata", LargeBinary, nullable=False),
    Column("sealed_manifest", LargeBinary, nullable=False),
    # HMAC-SHA256 of the plaintext under the owner's duplicate key (mar/duplicates.py): equal files in one
    # chart match, equal files in two charts do not. Null for records uploaded by someone else (summaries).
    Column("dup_hash", String(64), nullable=True),
    Column("supersedes", String(36), nullable=True, unique=True),  # the older version replaced (one successor)
)

# The owner's decisions on suggested duplicates (vault/reviews.py), so a pair is not suggested again. Only an
# HMAC of the pair under the owner's duplicate key is kept: the database does not say which records looked alike.
# "Same document" also keeps the two ids sealed under the chart key (so the chronology of every reader of the
# chart shows the document once); null for "keep both".
duplicate_reviews = Table(
    "duplicate_reviews",
    metadata,
    Column("owner_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("pair", String(64), primary_key=True),
    Column("decided_at", Float, nullable=False),
    Column("sealed", LargeBinary, nullable=True),
)

record_keys = Table(
    "record_keys",
    metadata,
    Column("record_id", String(36), ForeignKey("records.id", ondelete="CASCADE"), primary_key=True),
    Column("reader_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("granted_at", Float, nullable=False),
    Column("share_id", String(36), ForeignKey("shares.id", ondelete="CASCADE")),  # null: the owner's own key
)
Index("ix_record_keys_reader", record_keys.c.reader_id, record_keys.c.granted_at)

shares = Table(
    "shares",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("patient_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("specialist_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # records | chart
    Column("access", String(16), nullable=False),  # read | annotate
    Column("sealed_scope", LargeBinary),  # a chart slice (dates, facility), sealed to the patient's own key
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("revoked_at", Float),
)

audit = Table(
    "audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor_id", String(36)),
    Column("action", String(32), nullable=False),
    Column("record_id", String(36)),
    Column("ip", String(64)),
    Column("entry_hash", String(64), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("head", String(64), nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("at", Float, nullable=False),
)

bans = Table(
    "bans",
    metadata,
    Column("network", String(64), primary_key=True),
    Column("jail", String(64), nullable=False),
    Column("until", Float, nullable=False),
    Column("count", Integer, nullable=False),
    Column("reason", Text),
)

# Search (see mar/index.py): one random index key per user, sealed to the user's own X25519 key, and that
# user's index rows packed into AES-GCM-sealed segments. Nothing here is readable without the user's keys.
search_keys = Table(
    "search_keys",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("sealed_key", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)

search_segments = Table(
    "search_segments",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("gen", Integer, nullable=False),  # bumped on every rewrite: optimistic concurrency between sessions
    Column("rows", Integer, nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# The chart workspace (see mar/chart.py): one random chart key per patient, HPKE-wrapped to the patient and
# to each specialist through the share that allows it (`via` is the share id, or "own" for the patient's
# copy), and the chart's entries, each AES-256-GCM-sealed under a subkey of that key and signed by its author;
# an entry's kind is sealed with the rest (revision 0008 dropped the clear `kind` column).
chart_keys = Table(
    "chart_keys",
    metadata,
    Column("patient_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("reader_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("via", String(36), primary_key=True),  # the share id, or "own": one row per share, no races
    Column("share_id", String(36), ForeignKey("shares.id", ondelete="CASCADE")),  # null: the patient's own
    Column("wrapped", LargeBinary, nullable=False),
    Column("granted_at", Float, nullable=False),
)
Index("ix_chart_keys_share", chart_keys.c.share_id)

chart_entries = Table(
    "chart_entries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("patient_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("author_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("sealed", LargeBinary, nullable=False),
)
