"""Starting our own modules in a child interpreter, importing the same pytest_memprof as this one."""

from __future__ import annotations

import os
import sys

# The folder holding the pytest_memprof running now (site-packages, or a source checkout).
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_module_command(module: str) -> list[str]:
    """argv that runs ``python -m module`` but imports this pytest_memprof, whatever the current folder holds.

    ``python -m`` puts the current folder first on sys.path: a user's folder with its own
    ``pytest_memprof`` in it (a source checkout without a built extension, say) would win.
    """
    code = (f"import runpy, sys; sys.path[0] = {_PACKAGE_PARENT!r}; "
            f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")
    return [sys.executable, "-c", code]
