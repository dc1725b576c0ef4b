"""Fixtures for ``memprof sys``: the real command in a subprocess (shared with tests/cli)."""

from __future__ import annotations

from tests.cli.conftest import ROOT, assert_one_line_error, memprof, memprof_command

__all__ = ["ROOT", "assert_one_line_error", "memprof", "memprof_command"]
