"""A registry with one dataset, logged with the `artfs` binary the wheel installed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# Big enough to be read lazily in verified chunks rather than downloaded whole before a read.
BIG_BYTES = 96 << 20


def artfs_bin() -> str:
    """The binary the wheel put beside this interpreter (never a cargo build's)."""
    return str(Path(sys.executable).parent / "artfs")


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("artfs")
    files = root / "files"
    (files / "nested").mkdir(parents=True)
    (files / "train.csv").write_text("x,y\n" + "".join(f"{i},{i * i}\n" for i in range(1000)))
    table = pa.table({"id": list(range(500)), "name": [f"n{i}" for i in range(500)]})
    pq.write_table(table, files / "table.parquet")
    (files / "nested" / "note.txt").write_text("hello\n")
    (files / "big.bin").write_bytes(os.urandom(BIG_BYTES))
    env = {
        "ARTFS_REGISTRY": str(root / "registry"),
        "ARTFS_CACHE_DIR": str(root / "cache"),
        "ARTFS_ENTITY": "e",
        "ARTFS_PROJECT": "p",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    subprocess.run([artfs_bin(), "-q", "log", "ds", str(files), "--alias", "best"], check=True)
    yield {"root": root, "files": files, "registry": env["ARTFS_REGISTRY"]}
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
