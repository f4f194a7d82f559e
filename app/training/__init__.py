"""From judgements to training: preference pairs and snapshots, graders, the run registry."""
