"""``python -m nasforge.cli``: the same as the ``nasforge`` command."""
import sys

from . import main

sys.exit(main())
