"""`python -m engine.cli`: the `adsearch` console script."""

import sys

from engine.cli import main

sys.exit(main())
