"""`python -m app.cli` is the `chambers` command."""

import sys

from app.cli import main

sys.exit(main())
