"""Bounded HTTP for our clients (``-c``, ``--browser``): a size cap, a deadline, one-line errors, no raw bytes echoed.

A server we read may be hostile or simply not what the user thinks it is. urllib reads a body of any
size, takes ``Content-Length`` at its word and puts the server's status line into its exception text;
here every reply is read against a cap and a deadline, and each failure becomes a short sentence of our own.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any

from ..errors import MemprofError

# No reply of a stats server comes near this (a busy machine's /api/4/all is a few hundred KiB).
MAX_REPLY_BYTES = 8 << 20
DEFAULT_TIMEOUT = 5.0


class SourceUnavailable(MemprofError):
    """A server did not answer usefully; the message is one line of our own words."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def request(host: str, port: int, method: str, path: str, *, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
            limit: int = MAX_REPLY_BYTES, tls: bool = False,
            connection: http.client.HTTPConnection | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request; (status, lower-cased headers, body) within ``timeout`` seconds and ``limit`` bytes."""
    deadline = time.monotonic() + timeout
    if connection is None:
        kind = http.client.HTTPSConnection if tls else http.client.HTTPConnection
        connection = kind(host, port, timeout=timeout)
    try:
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            length = response.getheader("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) > limit:
                raise SourceUnavailable(f"the reply would be {int(length) >> 20} MiB, more than the "
                                        f"{limit >> 20} MiB a stats reply may be")
            chunks, size = [], 0
            while True:
                if time.monotonic() > deadline:
                    raise SourceUnavailable(f"the reply did not end within {timeout:g} s")
                chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise SourceUnavailable(f"the reply is larger than the {limit >> 20} MiB a stats reply may be")
                chunks.append(chunk)
            return response.status, {k.lower(): v for k, v in response.getheaders()}, b"".join(chunks)
        except SourceUnavailable:
            raise
        except (socket.timeout, TimeoutError):
            raise SourceUnavailable(f"no reply within {timeout:g} s") from None
        except ConnectionRefusedError:
            raise SourceUnavailable("connection refused") from None
        except http.client.HTTPException:
            # BadStatusLine and friends carry the server's raw bytes in their text: say what it means instead.
            raise SourceUnavailable("it does not speak HTTP (its reply is not a valid HTTP response)") from None
        except socket.gaierror:
            raise SourceUnavailable(f"unknown host {host!r}") from None
        except OSError as error:
            raise SourceUnavailable((error.strerror or type(error).__name__).lower()) from None
    finally:
        connection.close()


def decode_json(body: bytes, what: str = "the reply") -> Any:
    """JSON from bytes; not JSON, not UTF-8 or nested beyond reason is a one-line SourceUnavailable."""
    try:
        return json.loads(body.decode("utf-8"))
    except RecursionError:
        raise SourceUnavailable(f"{what} nests JSON deeper than any stats reply does") from None
    except (UnicodeDecodeError, ValueError):
        raise SourceUnavailable(f"{what} is not JSON") from None


def get_json(host: str, port: int, path: str, authorization: str | None = None,
             timeout: float = DEFAULT_TIMEOUT) -> Any:
    """GET a JSON document from a stats server; HTTP errors are one line, 401 says whether a password was sent."""
    headers = {"Accept": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    status, _, body = request(host, port, "GET", path, headers=headers, timeout=timeout)
    if status == 401:
        raise SourceUnavailable("the password was refused (HTTP 401)" if authorization else
                                "the server needs a password: give it with --password or --password-file", 401)
    if status != 200:
        raise SourceUnavailable(f"HTTP {status} for {path}", status)
    return decode_json(body)
