"""``python -m sim.cli``: the same as the ``flashsim`` console script."""

import sys

from sim.cli.main import main

sys.exit(main())
