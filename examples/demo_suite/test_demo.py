"""A demo suite for `pytest --memprof`: two tests break their memory markers on purpose."""

import pytest

_SEEN = []


def build_report(rows: int) -> list:
    """Builds rows of 1 KiB each: about `rows` KiB in all."""
    return [bytearray(1024) for _ in range(rows)]


def remember(item) -> None:
    """A cache that is never emptied: the leak."""
    _SEEN.append(item)


@pytest.mark.limit_memory("16MB")
def test_report_fits_in_its_budget():
    assert len(build_report(10_000)) == 10_000


@pytest.mark.limit_memory("16MB")
def test_report_too_big_for_its_budget():
    """Fails on purpose: 30 MiB against a 16 MiB budget."""
    assert len(build_report(30_000)) == 30_000


@pytest.mark.no_leaks
def test_no_leak():
    total = sum(len(row) for row in build_report(1_000))
    assert total == 1_024_000


@pytest.mark.no_leaks
def test_leaks_into_a_cache():
    """Fails on purpose: keeps 2 MiB in a module-level list."""
    remember(build_report(2_048))


@pytest.mark.parametrize("size", [1, 4, 8])
def test_sizes(size):
    assert len(bytearray(size * 2**20)) == size * 2**20
