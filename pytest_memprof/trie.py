"""Memos over a stack trie: what a node's value is follows from its parent's, so stacks share the work."""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")


def memoised(node: int, memo: dict[int, T], parent: Callable[[int], int], step: Callable[[T, int], T]) -> T:
    """``memo[node]``, computing it and every node above it that is not in ``memo`` yet, from the nearest
    ancestor that is: ``step(parent's value, node)``. ``memo`` must hold the root's value."""
    value = memo.get(node)
    if value is not None:
        return value
    chain = []
    while node not in memo:
        chain.append(node)
        node = parent(node)
    value = memo[node]
    for node in reversed(chain):
        value = memo[node] = step(value, node)
    return value
