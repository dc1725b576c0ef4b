"""Errors a user can hit: one line of text each, mapped to an exit code by the CLI in one place."""

from __future__ import annotations


class MemprofError(Exception):
    """A failure the user should see as one line (exit code 1)."""

    exit_code = 1


class UsageError(MemprofError):
    """Bad arguments or options (exit code 2)."""

    exit_code = 2


class TrackerError(MemprofError):
    """The tracker could not start or stop (e.g. one is already active)."""


class CaptureWriteError(TrackerError):
    """The capture file could not be written (a full disk, an I/O error): the program itself is fine."""


class CaptureError(MemprofError):
    """A capture file is missing, unreadable, corrupt or of an unknown kind."""


class CaptureVersionError(CaptureError):
    """A capture file was written by a newer format version than this reader knows."""
