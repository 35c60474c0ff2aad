"""`python -m cj_batching` runs the command line."""

import sys

from cj_batching.cli import main

sys.exit(main())
