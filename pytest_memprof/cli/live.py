"""``memprof live``: watch a program started with ``memprof run --live-remote``."""

from __future__ import annotations

import argparse
import sys

from ..errors import UsageError

HEADER_TIMEOUT_S = 30.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``live`` subcommand."""
    parser = subparsers.add_parser(
        "live",
        help="watch the memory of a program started with `memprof run --live-remote`",
        description="Connect to a program started with `memprof run --live-remote` and show, as it runs, its "
        "heap and RSS over time and the locations holding the most memory now. Quitting (q) disconnects; "
        "the program goes on.",
    )
    parser.add_argument("port", type=int, help="the port `memprof run --live-remote` printed")
    parser.add_argument("--host", default="127.0.0.1", help="where the program runs (default 127.0.0.1)")
    parser.add_argument("--timeout", type=float, default=HEADER_TIMEOUT_S, metavar="SECONDS",
                        help="give up when the program sends no capture within this many seconds of connecting "
                        f"(default {HEADER_TIMEOUT_S:g})")
    parser.set_defaults(func=live)


def live(args: argparse.Namespace) -> int:
    """Connect, check the stream is a capture this memprof reads, and show the view."""
    if not 1 <= args.port <= 65535:
        raise UsageError(f"port {args.port}: a port is a number from 1 to 65535")
    if not args.timeout > 0:
        raise UsageError(f"--timeout {args.timeout:g}: a time-out is a number of seconds above 0")
    from ..live.sources import SocketSource
    from ..live.stream import LiveSession

    session = LiveSession(SocketSource(args.host, args.port))
    try:
        # Refuse a stranger or a newer format here, as one line, before the view takes the terminal.
        session.wait_for_header(args.timeout)
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UsageError("memprof live needs a terminal")
        from ..live.view import LiveView

        LiveView(session, quit_on_signals=True).run()
    finally:
        session.close()
    return 0
