"""``python -m histcalc``: the same as the ``histcalc`` command."""

import sys

from histcalc.cli import main

if __name__ == "__main__":  # worker processes re-import this module: they must not run the job
    sys.exit(main())
