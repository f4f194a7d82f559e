"""Training screens: preference pairs and snapshots, the run dialog, runs watched live."""
