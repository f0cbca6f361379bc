"""`python -m scv_cli`: the `scv` command."""

import sys

from scv_cli.main import main

sys.exit(main())
