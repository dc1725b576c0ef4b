"""``python -m pytest_memprof`` is ``memprof``."""

from .cli import console_main

console_main()
