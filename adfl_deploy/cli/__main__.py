"""``python -m adfl_deploy.cli`` (what ``torchrun -m`` needs)."""

import sys

from adfl_deploy.cli import main

sys.exit(main())
