#!/usr/bin/env python3
"""Replace one `## ` section of BENCHMARKS.md with the text on stdin; keep every other section.

Usage: update-section.py BENCHMARKS.md "## Heading" < section.md
The section runs from its heading to the next `## ` heading; a missing one is appended.
"""
import pathlib
import sys

path, heading = pathlib.Path(sys.argv[1]), sys.argv[2]
new = sys.stdin.read().rstrip("\n") + "\n"
lines = path.read_text().splitlines(keepends=True) if path.exists() else ["# Benchmarks\n", "\n"]
start = next((i for i, l in enumerate(lines) if l.rstrip("\n") == heading), None)
if start is None:
    if lines and lines[-1].strip():
        lines.append("\n")
    lines.append(new)
else:
    end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
    lines[start:end] = [new] + (["\n"] if end < len(lines) else [])
path.write_text("".join(lines))
