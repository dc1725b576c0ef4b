"""REST speed of ``memprof sys -w`` against ``glances -w``: requests a second on one keep-alive client.

Both servers run on 127.0.0.1 with a 1 s refresh; one client sends ``--requests`` GETs of each
path on one connection, the two servers alternately, ``--rounds`` times. The table gives medians
and the ratio ours/Glances (above 1.0 is faster). The machine is shared and noisy: differences
under 10% are noise. This used to be a unit test's assertion (500 a second); a time belongs here.

    python benchmarks/sys_server.py [--rounds 5] [--requests 500]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The servers as the test suite starts them (tests/sysstats/conftest.py): one way to do it.
from tests.sysstats.conftest import GlancesServer, Server  # noqa: E402

PATHS = ("/api/4/status", "/api/4/all", "/api/4/mem")


def rate(port: int, path: str, requests: int) -> float:
    """Requests a second for ``requests`` GETs of ``path`` on one connection (after one warm-up)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path)
    connection.getresponse().read()
    started = time.perf_counter()
    for _ in range(requests):
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"{path} on port {port} answered {response.status}")
    elapsed = time.perf_counter() - started
    connection.close()
    return requests / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--requests", type=int, default=500, help="requests a path a round (default 500)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        ours = Server("-w", "-t", "1")
        servers = {"memprof": ours.port}
        try:
            import glances  # a test extra
        except ImportError:
            glances = None
            print("Glances is not installed beside this Python: memprof only", file=sys.stderr)
        theirs = GlancesServer("-w", Path(home)) if glances else None
        if theirs:
            servers["glances"] = theirs.port
        try:
            results: dict[tuple[str, str], list[float]] = {}
            for _ in range(options.rounds):
                for path in PATHS:
                    for name, port in servers.items():
                        results.setdefault((name, path), []).append(rate(port, path, options.requests))
        finally:
            ours.stop()
            if theirs:
                theirs.stop()
    print(f"{options.rounds} rounds alternating, {options.requests} requests a path, one keep-alive client; "
          "medians in requests a second\n")
    print("| path | memprof | glances | ratio memprof/glances |")
    print("|---|---|---|---|")
    for path in PATHS:
        ours = statistics.median(results["memprof", path])
        theirs = statistics.median(results["glances", path]) if glances else None
        print(f"| {path} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f} |" if theirs
              else f"| {path} | {ours:.0f} | - | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
