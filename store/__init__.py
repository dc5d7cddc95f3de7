"""The prediction store: predictions, feedback and drift runs in SQLite or PostgreSQL."""
