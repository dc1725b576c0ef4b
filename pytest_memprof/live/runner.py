"""``memprof run --live`` and ``--live-remote``: the runner's side of the live view.

``--live`` runs the program as a child ``memprof run -o FILE`` (its output to a log file, since the
view owns the terminal) and follows FILE. ``--live-remote`` keeps the program in this process and
hands its capture file to the streaming server (see ``server.py``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from .._launch import python_module_command
from ..errors import MemprofError, UsageError
from .server import StreamServer, is_loopback
from .sources import FileFollower
from .stream import LiveSession

STOP_GRACE_S = 5.0  # SIGINT first: the program's finally blocks run and the capture ends whole
TERM_GRACE_S = 3.0
HEADER_TIMEOUT_S = 60.0


def check_live_options(args: argparse.Namespace) -> None:
    """Refuse combinations that mean nothing; raises UsageError."""
    if args.live and args.live_remote:
        raise UsageError("--live and --live-remote exclude each other (one shows the view here, one elsewhere)")
    if not args.live_remote and (args.live_port is not None or args.live_host is not None):
        raise UsageError("--live-port and --live-host go with --live-remote")
    if args.live_port is not None and not 0 <= args.live_port <= 65535:
        raise UsageError(f"--live-port {args.live_port}: a port is a number from 0 to 65535")


def program_words(args: argparse.Namespace) -> list[str]:
    """The program part of a ``memprof run`` command line (after the target was split)."""
    if args.module:
        return ["-m", args.module, *args.args]
    if args.code is not None:
        return ["-c", args.code, *args.args]
    return [args.script, *args.args]


class LocalProgram:
    """A child ``memprof run -o CAPTURE PROGRAM`` in its own session, its output going to a log file."""

    def __init__(self, run_options: list[str], program: list[str], capture: Path, log_path: Path) -> None:
        self.capture = Path(capture)
        self.log_path = Path(log_path)
        self.display = shlex.join(program)
        self.command = [*python_module_command("pytest_memprof"), "run", "-q", "-f", "-o", os.fspath(self.capture),
                        *run_options, *program]
        self._process: subprocess.Popen | None = None
        self._stopped = False

    @property
    def pid(self) -> int:
        """The child's process id (0 before start)."""
        return self._process.pid if self._process else 0

    def start(self) -> None:
        """Start the program."""
        with open(self.log_path, "wb") as log:
            # Its own session: terminal signals go to the view, and stop() can reach the program's children.
            self._process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)

    def exited(self) -> bool:
        """Whether the program has ended."""
        return self._process is None or self._process.poll() is not None

    @property
    def returncode(self) -> int | None:
        """The exit code (128 + N for a signal, as a shell says), None while running."""
        code = self._process.poll() if self._process else None
        return 128 - code if code is not None and code < 0 else code

    def stop(self) -> int | None:
        """Stop the program cleanly: SIGINT, then SIGTERM, then SIGKILL, each after a grace period."""
        process = self._process
        if process is None or self._stopped:
            return self.returncode
        self._stopped = True  # once: after the group is gone its id may be reused, and must not be signalled
        for signum, grace in ((signal.SIGINT, STOP_GRACE_S), (signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, None)):
            if process.poll() is not None:
                break
            self._signal_group(signum)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        # Whatever the program started in its session and left behind goes with it.
        if self._signal_group(signal.SIGTERM):
            self._signal_group(signal.SIGKILL)
        return self.returncode

    def _signal_group(self, signum: int) -> bool:
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def last_log_line(self) -> str:
        """The program's last line of output (why it could not start), or ""."""
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""


def start_local(
    program: list[str], run_options: list[str], capture: Path, workdir: Path
) -> tuple[LocalProgram, LiveSession]:
    """Start ``memprof run RUN_OPTIONS -o CAPTURE PROGRAM`` as a child (its log in ``workdir``) and follow CAPTURE."""
    if capture.exists():
        capture.unlink()  # checked against --force already; a stale file must not be followed
    child = LocalProgram(run_options, program, capture, workdir / "program.log")
    child.start()
    source = FileFollower(capture, child.exited, name=f"the capture of {child.display}")
    session = LiveSession(source, program=child.display, log_path=str(child.log_path),
                          exit_code=lambda: child.returncode)
    return child, session


def run_with_view(args: argparse.Namespace, output: Path | None) -> int:
    """``memprof run --live``: run the program as a child and watch it here; return its exit code."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("--live needs a terminal; elsewhere use --live-remote and `memprof live PORT`")
    from .view import LiveView  # textual is imported only when a view is shown

    workdir = Path(tempfile.mkdtemp(prefix="memprof-live-"))
    options = [flag for flag, on in (("--native", args.native), ("--follow-fork", args.follow_fork),
                                     ("--no-python-allocators", args.no_python_allocators)) if on]
    capture = output if output is not None else workdir / "capture.bin"
    program, session = start_local(program_words(args), options, capture, workdir)
    try:
        try:
            session.wait_for_header(HEADER_TIMEOUT_S)
        except MemprofError:
            program.stop()
            reason = program.last_log_line()
            raise MemprofError(f"the program ended before its capture began: {reason or 'no output'}") from None
        LiveView(session, on_quit=program.stop, quit_on_signals=True).run()
    finally:
        session.close()
        program.stop()
        if output is None:
            program.capture.unlink(missing_ok=True)
    print(f"memprof: the program's output is in {program.log_path}", file=sys.stderr)
    if output is not None and not args.quiet:
        print(f"memprof: wrote {output}", file=sys.stderr)
    return program.returncode or 0


def connect_command(host: str, port: int) -> str:
    """What a viewer runs to reach a server listening on ``host``:``port``."""
    if host in ("127.0.0.1", "localhost"):
        return f"`memprof live {port}`"
    if host in ("0.0.0.0", "::", ""):
        # A wildcard is where the server listens, not an address to connect to: this machine's
        # name works from elsewhere, 127.0.0.1 from here.
        return f"`memprof live {port} --host {socket.gethostname()}` (or `memprof live {port}` on this machine)"
    return f"`memprof live {port} --host {host}`"


def serve_to_first_viewer(server: StreamServer, host: str) -> int:
    """Start ``server``, say on stderr how to connect (and that it is unencrypted off loopback), and
    wait for the first viewer; returns the port."""
    port = server.start()
    if not is_loopback(host):
        print(f"memprof: warning: the capture is sent unencrypted to anyone who connects to {host}:{port}",
              file=sys.stderr)
    print(f"memprof: waiting for a viewer on {host}:{port}: run {connect_command(host, port)}",
          file=sys.stderr, flush=True)
    server.wait_for_viewer()
    return port


class RemoteLive:
    """``memprof run --live-remote``: the capture file, the streaming server, the wait for a viewer."""

    def __init__(self, args: argparse.Namespace, output: Path | None) -> None:
        self.host = args.live_host or "127.0.0.1"
        self.port = args.live_port or 0
        self._workdir = None if output is not None else Path(tempfile.mkdtemp(prefix="memprof-live-"))
        self.output = output if output is not None else self._workdir / "capture.bin"
        self._server: StreamServer | None = None

    def start(self) -> None:
        """Start the server and wait until a viewer connects."""
        if self.output.exists():
            self.output.unlink()  # checked against --force already; viewers must not get the old file
        self._server = StreamServer(self.output, self.host, self.port)
        try:
            serve_to_first_viewer(self._server, self.host)
        except BaseException:
            self.finish()
            raise

    def finish(self) -> None:
        """The capture is complete: let the server send the rest, then remove a temporary capture."""
        if self._server is not None:
            self._server.finish()
            self._server = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
