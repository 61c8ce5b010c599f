"""``python -m bertdemo`` runs the command line."""

import sys

from bertdemo.cli import main

sys.exit(main())
