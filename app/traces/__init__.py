"""Agent traces: the internal model, the importers for every export format, ingest and queries."""
