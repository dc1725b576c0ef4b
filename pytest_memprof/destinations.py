"""Where a ``Tracker`` sends its capture, named as memray names them: a file, or a socket to stream to viewers."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from .errors import MemprofError, TrackerError

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class FileDestination:
    """A capture file, as memray's ``FileDestination(path, overwrite=False, compress_on_exit=True)``.

    ``compress_on_exit`` is accepted for memray's signature and changes nothing: our captures are
    compressed (LZ4) as they are written, never in a pass at exit.
    """

    path: PathLike
    overwrite: bool = False
    compress_on_exit: bool = True


@dataclass(frozen=True)
class SocketDestination:
    """Stream the capture to viewers (``memprof live PORT``), as memray's ``SocketDestination(server_port, address)``.

    The tracker starts a streaming server on ``address:server_port`` (0: a free port) and, like
    memray's, waits in ``start()`` until a viewer connects; every viewer gets the capture from its
    first byte. The server is a process of its own, so its work never shows in the capture.
    """

    server_port: int
    address: str = "127.0.0.1"


Destination = Union[FileDestination, SocketDestination]


class SocketStream:
    """A SocketDestination while tracking: the capture in a temporary file that the server sends on."""

    def __init__(self, destination: SocketDestination) -> None:
        if not 0 <= destination.server_port <= 65535:
            raise TrackerError(f"SocketDestination: server_port {destination.server_port} is not from 0 to 65535")
        self.destination = destination
        self._folder = Path(tempfile.mkdtemp(prefix="memprof-socket-"))
        self.capture = self._folder / "capture.bin"
        self._server = None
        self.port: int | None = None  # the port listened on, once started

    def start(self) -> None:
        """Listen, say where, and wait for the first viewer; raises TrackerError if it cannot listen."""
        from .live.runner import serve_to_first_viewer
        from .live.server import StreamServer

        self._server = StreamServer(self.capture, self.destination.address, self.destination.server_port)
        try:
            self.port = serve_to_first_viewer(self._server, self.destination.address)
        except MemprofError as error:
            self.finish()
            raise TrackerError(f"SocketDestination: {error}") from None
        except BaseException:
            self.finish()
            raise

    def finish(self) -> None:
        """The capture is complete: the server sends viewers the rest; the temporary file goes."""
        if self._server is not None:
            self._server.finish()
            self._server = None
        shutil.rmtree(self._folder, ignore_errors=True)
