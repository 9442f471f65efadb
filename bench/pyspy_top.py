"""Summarise a `py-spy record --format raw` file: samples per thread, and the functions with the most
samples, self (leaf frame) and inclusive (anywhere on the stack).

    python bench/pyspy_top.py var/bench/engine-r150/pyspy.txt [--top 25] [--thread sippy-reactor]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# A raw line: "thread (0x7f..);frame;frame;... COUNT"; a frame: "function (file.py:line)".
_FRAME_FILE = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    m = _FRAME_FILE.match(frame.strip())
    if not m:
        return frame.strip()
    function, path = m.groups()
    return f"{function} ({'/'.join(path.split('/')[-2:])})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", default=None, help="only threads whose name contains this")
    args = parser.parse_args()
    threads: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in Path(args.file).read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0]
        if args.thread and args.thread not in thread:
            continue
        threads[re.sub(r"\s*\(0x[0-9a-f]+\)", "", thread)] += count
        names = [frame_name(f) for f in frames[1:]]
        total += count
        if names:
            leaf[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    print(f"{total} samples")
    for title, counter in (("threads", threads), ("self (leaf)", leaf), ("inclusive", inclusive)):
        print(f"\n{title}:")
        for name, count in counter.most_common(args.top):
            print(f"  {100 * count / max(total, 1):5.1f} %  {name}")


if __name__ == "__main__":
    main()
