"""``python -m modelbuild``: see :func:`modelbuild.main.main`."""

import sys

from modelbuild.main import main

sys.exit(main())
