"""`kvcert operator run` under tracemalloc, for `bench_operator --tracemalloc FILE` (issue #17 §4).

    python -m tests.perf.traced_operator operator run --kubeconfig ...

The first SIGUSR2 takes a baseline snapshot; each later one writes to $KVCERT_TRACEMALLOC_OUT
the Python memory allocated since the baseline and still held, grouped by the line that
allocated it (largest first), with a total. Only the benchmark runs this; the operator itself
never imports tracemalloc.
"""

from __future__ import annotations

import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

TOP = 40
_baseline: list[tracemalloc.Snapshot] = []


def _snapshot() -> tracemalloc.Snapshot:
    ignore = (
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    )
    return tracemalloc.take_snapshot().filter_traces(ignore)


def _dump(_signal: int, _frame: FrameType | None) -> None:
    if not _baseline:
        _baseline.append(_snapshot())
        Path(os.environ["KVCERT_TRACEMALLOC_OUT"] + ".baseline").write_text("taken\n")
        return
    diff = _snapshot().compare_to(_baseline[0], "lineno")
    total = sum(stat.size_diff for stat in diff)
    lines = [f"total {total} bytes held since the baseline"]
    lines += [
        f"{stat.size_diff:>12} B {stat.count_diff:>8} blocks  {stat.traceback[0]}"
        for stat in diff[:TOP]
    ]
    out = Path(os.environ["KVCERT_TRACEMALLOC_OUT"])
    temporary = out.with_suffix(".tmp")
    temporary.write_text("\n".join(lines) + "\n")
    temporary.replace(out)


if __name__ == "__main__":
    tracemalloc.start(int(os.environ.get("KVCERT_TRACEMALLOC_FRAMES", "1")))
    signal.signal(signal.SIGUSR2, _dump)
    from kvcert.cli import main

    sys.argv[0] = "kvcert"
    sys.exit(main())
