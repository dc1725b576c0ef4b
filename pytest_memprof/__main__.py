"""``python -m pytest_memprof`` is ``memprof``."""

import sys

from .cli import main

sys.exit(main())
