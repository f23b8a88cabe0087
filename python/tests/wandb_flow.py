"""Run by test_wandb.py with the real `wandb` SDK's Python: `artfs.wandb.mount` as a drop-in for
`artifact.download()` against `artfs serve`. Fails on any warning the SDK logs."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import wandb

import artfs.wandb

warnings: list[str] = []


class Collect(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        warnings.append(self.format(record))


logging.getLogger("wandb").addHandler(Collect(level=logging.WARNING))
tmp = Path(os.environ["FLOW_TMP"])


def check(ok: bool, what: str) -> None:
    if not ok:
        print("FLOW FAILED:", what, file=sys.stderr)
        sys.exit(1)


art = wandb.Api().artifact("e/p/ds:best")
downloaded = Path(art.get_entry("train.csv").download(root=str(tmp / "dl")))
mounted = artfs.wandb.mount(art)
check(Path(mounted, "train.csv").read_bytes() == downloaded.read_bytes(), "train.csv differs")
check(Path(mounted, "nested", "note.txt").read_text() == "hello\n", "nested/note.txt differs")
check(os.path.ismount(mounted), "not a mount point")
mounted.unmount()
check(not os.path.ismount(mounted.path), "still mounted after unmount()")
with artfs.wandb.mount(f"e/p/ds:{art.version}") as path:
    check((path / "nested" / "note.txt").read_text() == "hello\n", "by name")
check(not warnings, f"the SDK logged warnings: {warnings!r}")
print("FLOW-OK")
