"""``python -m one4d``: the same command line as the ``one4d`` script."""
import sys

from .cli import main

sys.exit(main())
