"""``python -m pipeline``: the same as the ``cosmopipe`` command."""
import sys

from .cli import main

sys.exit(main())
