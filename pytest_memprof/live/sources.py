"""Where a live view's bytes come from: a socket (``memprof live``) or a capture file being written."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path
from typing import Callable

from ..errors import MemprofError

CHUNK = 256 << 10


class SocketSource:
    """The capture stream sent by ``memprof run --live-remote``'s server."""

    def __init__(self, host: str, port: int, connect_timeout: float = 5.0) -> None:
        self.name = f"{host}:{port}"
        try:
            self._socket: socket.socket | None = socket.create_connection((host, port), timeout=connect_timeout)
        except ConnectionRefusedError:
            raise MemprofError(
                f"cannot connect to {self.name}: nothing is listening there "
                "(start the program with `memprof run --live-remote`)"
            ) from None
        except socket.timeout:
            raise MemprofError(f"cannot connect to {self.name}: no answer within {connect_timeout:g} s") from None
        except OSError as error:
            raise MemprofError(f"cannot connect to {self.name}: {error.strerror or error}") from None
        self._socket.settimeout(None)
        self.lost: str | None = None  # why the stream ended abnormally (connection reset)

    def read(self, timeout: float) -> bytes | None:
        """Bytes that arrived within ``timeout`` seconds (b"" if none); None once the peer closed."""
        if self._socket is None:
            return None
        try:
            ready, _, _ = select.select([self._socket], [], [], max(timeout, 0.0))
            if not ready:
                return b""
            data = self._socket.recv(CHUNK)
        except OSError as error:
            self.lost = f"connection lost ({error.strerror or error})"
            return None
        return data or None

    def close(self) -> None:
        """Disconnect; the program goes on."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class FileFollower:
    """A capture file being written by another process: read from the start, then tail it.

    ``writer_done`` says whether the writer has exited; once it has and the file is read to its end,
    the stream is over even if the capture lacks its end mark (the writer was killed).
    """

    def __init__(self, path: Path, writer_done: Callable[[], bool], name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or str(path)
        self._writer_done = writer_done
        self._file = None

    def read(self, timeout: float) -> bytes | None:
        """Bytes appended since the last read (b"" if none within ``timeout``); None once the writer is done."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            # Ask before reading: a writer that has exited wrote everything, so this read sees it all.
            done = self._writer_done()
            if self._file is None:
                try:
                    self._file = open(self.path, "rb")
                except FileNotFoundError:
                    if done:
                        return None
            if self._file is not None:
                data = self._file.read(CHUNK)
                if data:
                    return data
                if done:
                    return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return b""
            time.sleep(min(remaining, 0.05))

    def close(self) -> None:
        """Stop reading the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

