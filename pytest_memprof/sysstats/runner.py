"""The refresh loop shared by the printers and the terminal view: sample, show, wait; retry a server that is away."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Protocol, TextIO

from ..errors import MemprofError
from .source import SourceUnavailable


class Source(Protocol):
    """Anything with ``sample() -> {plugin: value}`` and a description for messages."""

    description: str

    def sample(self) -> dict[str, Any]: ...


class Refreshes:
    """Yields snapshots every ``interval`` seconds, at most ``stop_after`` times (None: until stopped).

    A source that is away is reported once on ``messages`` and retried at the same pace; each try
    counts as a refresh. If ``stop_after`` tries all failed, iteration raises a one-line MemprofError.
    """

    def __init__(self, source: Source, interval: float, stop_after: int | None, messages: TextIO | None = None,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.source = source
        self.interval = interval
        self.stop_after = stop_after
        self.messages = messages or sys.stderr
        self.should_stop = should_stop
        self.received = 0

    def _say(self, text: str) -> None:
        self.messages.write(f"memprof: {text}\n")
        self.messages.flush()

    def __iter__(self):
        tries = 0
        away: str | None = None
        deadline = time.monotonic()
        while not self.should_stop():
            tries += 1
            last = self.stop_after is not None and tries >= self.stop_after
            try:
                snapshot = self.source.sample()
            except SourceUnavailable as error:
                if last and not self.received:
                    raise MemprofError(f"no stats from {self.source.description} after {tries} "
                                       f"tr{'y' if tries == 1 else 'ies'}: {error}") from None
                if away is None and not last:
                    self._say(f"{self.source.description} is not answering ({error}); "
                              f"retrying every {self.interval:g} s")
                away = str(error)
            else:
                if away is not None:
                    self._say(f"{self.source.description} is back")
                    away = None
                self.received += 1
                yield snapshot
            if last:
                return
            # Behind schedule (a slow sample): carry on from now rather than catch up in a burst.
            deadline = max(deadline + self.interval, time.monotonic())
            self._wait(deadline)

    def _wait(self, deadline: float) -> None:
        # Short naps so that a stop request (q in the terminal view) is seen quickly.
        while not self.should_stop():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))
