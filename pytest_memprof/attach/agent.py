"""The attached side: runs inside the target, keeps the Tracker that ``memprof attach`` started.

``serve`` reads one request (a JSON line) from the attaching memprof and answers with one JSON
line carrying the token it was given. The state lives in this module, which stays imported in the
target: a later ``memprof detach`` finds it, and a second ``memprof attach`` is refused by it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any

from .. import _tracker
from ..errors import TrackerError
from ..tracker import Tracker

REQUEST_LIMIT = 64 << 10


class _Attached:
    """One ``memprof attach`` session in this process."""

    def __init__(self, tracker: Tracker, output: str, live: socket.socket | None) -> None:
        self.tracker = tracker
        self.output = output
        self.since = time.time()
        self.live = live  # the attaching memprof's connection, while it streams the capture
        self.timer: threading.Thread | None = None
        self.cancel = threading.Event()
        self.error: str | None = None  # why the capture is not whole, once stopped


_lock = threading.Lock()
_session: _Attached | None = None


def serve(connection: socket.socket, token: str) -> None:
    """Answer one request of the attaching memprof on ``connection`` (whose ownership this takes)."""
    keep = False
    try:
        request = _read_request(connection)
        if request.get("action") == "attach":
            reply, keep = _attach(request, connection)
        elif request.get("action") == "detach":
            reply = _detach()
        else:
            reply = {"ok": False, "message": f"unknown request {request.get('action')!r}"}
        reply["token"] = token
        reply["pid"] = os.getpid()
        connection.sendall(json.dumps(reply).encode() + b"\n")
    except OSError:
        keep = False  # the attaching memprof went away; what was done stands and `memprof detach` undoes it
    finally:
        if not keep:
            connection.close()


def _read_request(connection: socket.socket) -> dict[str, Any]:
    data = b""
    while not data.endswith(b"\n") and len(data) < REQUEST_LIMIT:
        chunk = connection.recv(4096)
        if not chunk:
            break
        data += chunk
    return json.loads(data.decode()) if data.strip() else {}


def _attach(request: dict[str, Any], connection: socket.socket) -> tuple[dict[str, Any], bool]:
    global _session
    with _lock:
        if _session is not None:
            return {
                "ok": False,
                "message": (
                    f"already tracked by memprof attach since {_clock(_session.since)}"
                    f", writing {_session.output}: stop it with `memprof detach {os.getpid()}`"
                ),
            }, False
        if Tracker.is_active():
            return {
                "ok": False,
                "message": (
                    "already tracked by memprof: by a Tracker the program started itself (memprof run, "
                    "pytest --memprof or the Tracker API); stop it there"
                ),
            }, False
        tracker = Tracker(
            request["output"],
            native=bool(request.get("native")),
            trace_python_allocators=bool(request.get("trace_python_allocators", True)),
            overwrite=True,  # memprof attach checked -f/--force against the file already
        )
        try:
            tracker.start()
        except TrackerError as error:
            return {"ok": False, "message": str(error)}, False
        live = connection if request.get("live") else None
        session = _Attached(tracker, request["output"], live)
        _session = session
        duration = request.get("duration")
        if duration:
            session.timer = threading.Thread(
                target=_stop_after, args=(session, float(duration)), name="memprof-attach-duration", daemon=True
            )
            session.timer.start()
        return {"ok": True, "output": session.output, "python_stacks": _tracker.python_stacks()}, live is not None


def _clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))


def _stop_after(session: _Attached, seconds: float) -> None:
    # What this helper thread allocates is memprof's, not the program's.
    _tracker.ignore_this_thread()
    if not session.cancel.wait(seconds):
        _finish(session)


def _detach() -> dict[str, Any]:
    session = _session
    if session is None:
        if Tracker.is_active():
            return {
                "ok": False,
                "message": (
                    "not attached by memprof attach: it is tracked by a Tracker the program started itself "
                    "(memprof run, pytest --memprof or the Tracker API); stop it there"
                ),
            }
        return {"ok": False, "message": "not tracked by memprof attach: there is nothing to detach"}
    error = _finish(session)
    reply: dict[str, Any] = {"ok": error is None, "output": session.output}
    if error is not None:
        reply["message"] = error
    return reply


def _finish(session: _Attached) -> str | None:
    """Stop the session's tracker (once, whoever asks first); return why the capture is not whole, if so."""
    global _session
    with _lock:
        if _session is not session:
            return session.error
        _session = None
        session.cancel.set()
        try:
            session.tracker.stop()
        except TrackerError as error:
            session.error = str(error)
        if session.live is not None:
            # The attaching memprof streams the file: tell it the file is complete.
            try:
                session.live.sendall(b'{"stopped": true}\n')
            except OSError:
                pass
            session.live.close()
            session.live = None
        return session.error
