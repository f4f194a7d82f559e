"""Getting traces in: the import dialog."""
