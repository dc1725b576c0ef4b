"""A small program with a memory peak, a leak and a busy thread: something worth profiling."""

import threading

_CACHE = []


def load_table(rows: int) -> list:
    """Builds a table of rows, the program's peak."""
    return [bytearray(1024) for _ in range(rows)]


def remember(item: bytes) -> None:
    """Keeps every item forever: the leak."""
    _CACHE.append(item)


def worker() -> None:
    for _ in range(200):
        remember(bytes(4096))


def main() -> None:
    table = load_table(20_000)
    thread = threading.Thread(target=worker, name="cache-filler")
    thread.start()
    thread.join()
    del table


if __name__ == "__main__":
    main()
