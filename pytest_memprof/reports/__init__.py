"""Reporters: functions of a ``Capture`` that write HTML files or print to a terminal.

They know nothing of argparse; the ``memprof`` subcommands in ``cli/`` parse flags and call them.
"""

from __future__ import annotations
