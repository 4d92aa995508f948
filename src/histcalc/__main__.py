"""``python -m histcalc``: the same as the ``histcalc`` command."""

import sys

from histcalc.cli import main

sys.exit(main())
