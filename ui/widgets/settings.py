"""Where window geometry, splitters and the last judge are remembered (QSettings names)."""

ORG = "Chambers"
APP = "Chambers"
