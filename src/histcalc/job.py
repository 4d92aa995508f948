"""The file ``spark-submit`` runs on a cluster: ``spark-submit .../histcalc/job.py --start_date=...``.

It takes the same flags as the ``histcalc`` command; the Spark master comes from spark-submit.
"""

import sys

from histcalc.cli import main

if __name__ == "__main__":
    sys.exit(main())
