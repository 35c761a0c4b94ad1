"""Database access: the gevent-aware pool, the embedded PostgreSQL and the choice between them."""
