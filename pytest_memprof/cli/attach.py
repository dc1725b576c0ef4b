"""``memprof attach PID`` and ``memprof detach PID``: track a Python process that is already running."""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import UsageError

HOW = (
    "On Python 3.14+ the code runs through sys.remote_exec (PEP 768); before 3.14 gdb adds it as a "
    "pending call ($MEMPROF_GDB, else the gdb-for-pwndbg package's gdb, else PATH's). Either way it "
    "runs in the process's main thread the next time that thread runs Python code, and needs the "
    "right to ptrace the process (same user or root; see /proc/sys/kernel/yama/ptrace_scope)."
)
STOP_WAIT_S = 60.0


def _method_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pid", type=int, help="the process id of a running Python program")
    parser.add_argument(
        "--method",
        choices=("auto", "remote_exec", "gdb"),
        default="auto",
        help="how to run memprof's code in the process (default: remote_exec on Python 3.14+, else gdb)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long the process may take to run memprof's code (default 10)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``attach`` and ``detach`` subcommands."""
    attach = subparsers.add_parser(
        "attach",
        help="start tracking a running Python process, writing a capture file",
        description="Start a tracker inside a running Python process (same Python version as this memprof) "
        "and return; the process writes the capture until `memprof detach PID`, --duration, or its exit. " + HOW,
    )
    _method_options(attach)
    attach.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="capture file the process writes (default: memprof-attach.<pid>.bin in the current "
        "folder); the process must be able to write it",
    )
    attach.add_argument("-f", "--force", action="store_true", help="overwrite the capture file if it exists")
    attach.add_argument("--native", action="store_true", help="also record native (C/C++) stacks")
    attach.add_argument(
        "--no-python-allocators",
        action="store_true",
        help="do not hook Python's allocators (pymalloc is then seen only as its arenas)",
    )
    attach.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop tracking by itself after SECONDS (a timer thread in the process)",
    )
    attach.add_argument("-q", "--quiet", action="store_true", help="print nothing when all went well")
    live = attach.add_argument_group("live view")
    live.add_argument(
        "--live-remote",
        action="store_true",
        help="wait for `memprof live PORT` to connect, then attach and stream the capture to it "
        "until tracking stops (Ctrl-C here detaches)",
    )
    live.add_argument("--live-port", type=int, metavar="N", help="port for --live-remote (default: a free one)")
    live.add_argument("--live-host", metavar="HOST", help="address for --live-remote to listen on (default 127.0.0.1)")
    attach.set_defaults(func=run_attach)

    detach = subparsers.add_parser(
        "detach",
        help="stop the tracking `memprof attach` started in a process, completing its capture",
        description="Stop the tracker that `memprof attach` started in a running process: the capture is "
        "finished and every hook removed, and the process goes on. " + HOW,
    )
    _method_options(detach)
    detach.add_argument("-q", "--quiet", action="store_true", help="print nothing when all went well")
    detach.set_defaults(func=run_detach)


def _check_options(args: argparse.Namespace) -> None:
    if args.timeout <= 0:
        raise UsageError(f"--timeout {args.timeout:g}: expected a positive number of seconds")
    if getattr(args, "duration", None) is not None and args.duration <= 0:
        raise UsageError(f"--duration {args.duration:g}: expected a positive number of seconds")


def run_attach(args: argparse.Namespace) -> int:
    """Start tracking in ``args.pid``; with --live-remote, stream until it stops."""
    from ..attach import inject

    _check_options(args)
    live_wanted = args.live_remote or args.live_port is not None or args.live_host is not None
    if live_wanted:
        from ..live import runner

        args.live = False
        runner.check_live_options(args)
    if args.output:
        output = Path(args.output).absolute()
    elif live_wanted:
        output = None
    else:
        output = Path(f"memprof-attach.{args.pid}.bin").absolute()
    if output is not None and output.exists() and not args.force:
        raise UsageError(f"capture file {output} already exists (use -f/--force to overwrite it)")
    method = inject.choose_method(args.method)
    inject.check_target(args.pid)
    if live_wanted:
        return _attach_live(args, output, method)
    reply, connection = inject.run_in_process(
        args.pid, _attach_request(args, output, live=False), method=method, timeout=args.timeout
    )
    connection.close()
    _check_reply(args.pid, reply)
    if not args.quiet:
        until = (
            f"for {args.duration:g} s (or until `memprof detach {args.pid}`)"
            if args.duration
            else f"until `memprof detach {args.pid}` or its exit"
        )
        print(f"memprof: tracking pid {args.pid} {until}, writing {reply.get('output', output)}", file=sys.stderr)
    return 0


def run_detach(args: argparse.Namespace) -> int:
    """Stop the tracking ``memprof attach`` started in ``args.pid``."""
    from ..attach import inject

    _check_options(args)
    reply, connection = inject.run_in_process(args.pid, {"action": "detach"}, method=args.method, timeout=args.timeout)
    connection.close()
    _check_reply(args.pid, reply)
    if not args.quiet:
        output = reply.get("output")
        print(
            f"memprof: stopped tracking pid {args.pid}; wrote {output}\n"
            f"  see it with: memprof flamegraph {output}  |  memprof stats {output}",
            file=sys.stderr,
        )
    return 0


def _attach_request(args: argparse.Namespace, output: Path, *, live: bool) -> dict[str, Any]:
    return {
        "action": "attach",
        "output": os.fspath(output),
        "native": args.native,
        "trace_python_allocators": not args.no_python_allocators,
        "duration": args.duration,
        "live": live,
    }


def _check_reply(pid: int, reply: dict[str, Any]) -> None:
    from ..attach.inject import AttachError

    if not reply.get("ok"):
        raise AttachError(f"pid {pid}: {reply.get('message') or 'refused, without a reason'}")


def _attach_live(args: argparse.Namespace, output: Path | None, method: str) -> int:
    from ..attach import inject
    from ..live.server import StreamServer, is_loopback

    workdir = None
    if output is None:
        workdir = Path(tempfile.mkdtemp(prefix="memprof-attach-live-"))
        os.chmod(workdir, 0o755)
        output = workdir / "capture.bin"
    elif output.exists():
        output.unlink()  # checked against --force already; viewers must not get the old file
    host = args.live_host or "127.0.0.1"
    server = StreamServer(output, host, args.live_port or 0)
    connection: socket.socket | None = None
    try:
        port = server.start()
        if not is_loopback(host):
            print(
                f"memprof: warning: the capture is sent unencrypted to anyone who connects to {host}:{port}",
                file=sys.stderr,
            )
        print(
            f"memprof: waiting for a viewer on {host}:{port}: run `memprof live {port}"
            f"{'' if host == '127.0.0.1' else ' --host ' + host}`",
            file=sys.stderr,
            flush=True,
        )
        server.wait_for_viewer()
        reply, connection = inject.run_in_process(
            args.pid, _attach_request(args, output, live=True), method=method, timeout=args.timeout
        )
        _check_reply(args.pid, reply)
        if not args.quiet:
            print(
                f"memprof: streaming pid {args.pid}; Ctrl-C here or `memprof detach {args.pid}` stops",
                file=sys.stderr,
                flush=True,
            )
        try:
            _wait_until_stopped(connection, None)
        except KeyboardInterrupt:
            stop, stop_connection = inject.run_in_process(
                args.pid, {"action": "detach"}, method=method, timeout=args.timeout
            )
            stop_connection.close()
            _check_reply(args.pid, stop)
            _wait_until_stopped(connection, STOP_WAIT_S)
    finally:
        if connection is not None:
            connection.close()
        server.finish()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.output and not args.quiet:
        print(f"memprof: wrote {output}", file=sys.stderr)
    return 0


def _wait_until_stopped(connection: socket.socket, timeout: float | None) -> None:
    """Block until the agent says the capture is complete, or the process is gone (its end closes the socket)."""
    connection.settimeout(None)
    data = b""
    while True:
        ready, _, _ = select.select([connection], [], [], timeout)
        if not ready:
            return
        chunk = connection.recv(4096)
        if not chunk:
            return
        data += chunk
        for line in data.split(b"\n")[:-1]:
            if json.loads(line or b"{}").get("stopped"):
                return
