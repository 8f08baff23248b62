"""Top frames of a py-spy profile in collapsed ("raw") form: one line per distinct stack,
`frame;frame;...;leaf COUNT`, each frame `function (path/to/file.py:line)`.

    .venv/bin/python -m tests.perf.profile .bench/profile-operator.txt

Views, each as a share of all samples: the event loop's thread against the worker threads;
self time by library (the innermost frame outside the standard library: the library that asked
for the work); self time by function (the leaf); inclusive time by function (counted once per
sample however deep it recurs); inclusive time by package (httpx, httpcore, kopf, pydantic,
kubernetes, urllib3, kvcert.<subpackage>, ...).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>[^:()]*)(?::\d+)?\)$")
TOP = 15


def _frame(text: str) -> tuple[str, str]:
    """(function (file), package) of one collapsed frame."""
    match = _FRAME.match(text.strip())
    if not match:
        return text.strip(), "?"
    path = match.group("path")
    return f"{match.group('function')} ({Path(path).name})", _package(path)


def _package(path: str) -> str:
    """The library a frame's file belongs to. py-spy shortens paths to the import root
    ("httpcore/_async/x.py", "kvcert/runtime/y.py", "asyncio/events.py", "ssl.py"):
    -> "httpcore", "kvcert.runtime", "stdlib"."""
    parts = Path(path).parts
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    if not parts:
        return "?"
    top = parts[0].removesuffix(".py")
    if top.startswith("<") or top in sys.stdlib_module_names:
        return "stdlib"
    if top == "kvcert" and len(parts) > 1:
        return "kvcert." + parts[1].removesuffix(".py")
    return top


def top_frames(path: Path, top: int = TOP) -> dict[str, Any]:
    """{"samples", "threads", "libraries", "self", "inclusive", "packages", "table"}: each view a
    list of
    [name, percent of samples] pairs, largest first; "table" the same as printable lines."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame(f) for f in stack.split(";") if not f.startswith("process ")]
        frames = [f for f in frames if not f[0].startswith("thread (")]
        if not frames:
            continue
        own[frames[-1][0]] += count
        threads["worker threads" if "threading.py" in stack.split(";")[0] else "event loop"] += (
            count
        )
        library = next((p for _, p in reversed(frames) if p != "stdlib"), "stdlib")
        libraries[library] += count
        for name in {name for name, _ in frames}:
            inclusive[name] += count
        for package in {package for _, package in frames}:
            packages[package] += count

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)]

    views = {
        "threads": share(threads),
        "libraries": share(libraries),
        "self": share(own),
        "inclusive": share(inclusive),
        "packages": share(packages),
    }
    table = [f"py-spy: {total} samples"]
    for view, rows in views.items():
        table.append(f"{view}:")
        table += [f"  {pct:5.1f} %  {name}" for name, pct in rows]
    return {"samples": total, **views, "table": table}


if __name__ == "__main__":
    for row in top_frames(Path(sys.argv[1]))["table"]:
        print(row)
