"""`python -m shoprank` = the `shoprank` command."""

import sys

from shoprank.cli import main

sys.exit(main())
