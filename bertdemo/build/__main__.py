"""``python -m bertdemo.build``: see :func:`bertdemo.build.main.main`."""

import sys

from bertdemo.build.main import main

sys.exit(main())
