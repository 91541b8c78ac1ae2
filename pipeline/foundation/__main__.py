"""``python -m cosmopipe``: the same as the ``cosmopipe`` command."""
import sys

from cosmopipe.pipeline.cli import main

sys.exit(main())
