"""Database access: SQLAlchemy Core tables, an engine factory and Alembic migrations (SQLite or PostgreSQL).

Everything personal in these tables is ciphertext; the columns in plaintext are what the server needs to
route requests (ids, roles, expiry times, sizes).
"""
