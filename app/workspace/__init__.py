"""The workspace: one database (SQLite or PostgreSQL) with its schema, migrations, audit log and paths."""
