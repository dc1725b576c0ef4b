"""A million allocations from 10,000 distinct stacks, all live at the peak: the scale case for reports.

10 top functions call 100 middle ones, which call 10,000 leaves (made with exec, so each stack
really is distinct); each leaf makes 100 allocations of 100 bytes. The report tests and
benchmarks/reports.py run it.
"""

keep = []
for t in range(10):
    exec(f"def top_{t}(i):\n    return globals()['mid_%d' % (i // 100)](i)\n")
for m in range(100):
    exec(f"def mid_{m}(i):\n    return globals()['leaf_%d' % i]()\n")
for i in range(10000):
    exec(f"def leaf_{i}():\n    for _ in range(100):\n        keep.append(bytes(100))\n")
for i in range(10000):
    globals()[f"top_{i // 1000}"](i)
