"""`artfs://` through fsspec, pandas and pyarrow: in-process reads, verified, without FUSE."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow.parquet as pq
import pytest

import artfs
from artfs.filesystem import ArtfsFileSystem

FUSE_DEVICE = os.makedev(10, 229)


def test_fuse_is_unavailable_to_these_tests() -> None:
    if os.environ.get("ARTFS_TEST_NO_FUSE") is None:
        pytest.skip("run by `make python-test` with /dev/fuse masked")
    assert not os.path.exists("/dev/fuse") or os.stat("/dev/fuse").st_rdev != FUSE_DEVICE


def test_ls_and_info_list_the_version(dataset: dict[str, object]) -> None:
    fs = fsspec.filesystem("artfs")
    names = fs.ls("artfs://e/p/ds:best", detail=False)
    assert sorted(names) == [
        "e/p/ds:best/big.bin",
        "e/p/ds:best/nested",
        "e/p/ds:best/table.parquet",
        "e/p/ds:best/train.csv",
    ]
    assert fs.info("e/p/ds:best/nested")["type"] == "directory"
    files = dataset["files"]
    assert isinstance(files, Path)
    info = fs.info("artfs://e/p/ds:v0/train.csv")
    assert info == {
        "name": "e/p/ds:v0/train.csv",
        "size": (files / "train.csv").stat().st_size,
        "type": "file",
    }
    assert fs.exists("e/p/ds:v0/nested/note.txt")
    assert not fs.exists("e/p/ds:v0/nested/none.txt")


def test_cat_open_ranges_and_get_return_the_logged_bytes(
    dataset: dict[str, object], tmp_path: Path
) -> None:
    files = dataset["files"]
    assert isinstance(files, Path)
    fs = fsspec.filesystem("artfs")
    assert fs.cat("artfs://e/p/ds:latest/nested/note.txt") == b"hello\n"
    big = (files / "big.bin").read_bytes()
    rng = random.Random(7)
    with fs.open("artfs://e/p/ds:v0/big.bin", "rb", block_size=1 << 20) as f:
        for _ in range(20):
            start = rng.randrange(len(big) - 4096)
            f.seek(start)
            assert f.read(4096) == big[start : start + 4096]
    assert fs.cat_file("e/p/ds:v0/big.bin", start=len(big) - 10) == big[-10:]
    fs.get("artfs://e/p/ds:v0/train.csv", str(tmp_path / "train.csv"))
    assert (tmp_path / "train.csv").read_bytes() == (files / "train.csv").read_bytes()


def test_pandas_and_pyarrow_read_artfs_urls(dataset: dict[str, object]) -> None:
    frame = pd.read_csv("artfs://e/p/ds:best/train.csv")
    assert list(frame.columns) == ["x", "y"] and len(frame) == 1000
    assert frame["y"].iloc[999] == 999 * 999
    fs = ArtfsFileSystem()
    table = pq.read_table("e/p/ds:best/table.parquet", filesystem=fs)
    assert table.num_rows == 500 and table.column("name")[499].as_py() == "n499"


def test_a_missing_path_or_version_raises_not_found(dataset: dict[str, object]) -> None:
    fs = fsspec.filesystem("artfs")
    with pytest.raises(FileNotFoundError) as missing:
        fs.cat("artfs://e/p/ds:v0/nope.csv")
    assert isinstance(missing.value, artfs.NotFoundError)
    assert "e/p/ds:v0/nope.csv" in str(missing.value)
    with pytest.raises(artfs.NotFoundError):
        fs.cat("artfs://e/p/ds:v9/train.csv")
    with pytest.raises(artfs.InvalidError):
        fs.cat("artfs://e/p/ds/train.csv")


def test_a_tampered_blob_raises_and_nothing_unverified_is_returned(
    dataset: dict[str, object], tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(str(dataset["registry"]), registry)
    tampered = 0
    for path in registry.rglob("*"):
        if path.is_file() and path.read_bytes() == b"hello\n":
            path.chmod(0o644)
            path.write_bytes(b"jello\n")
            tampered += 1
    assert tampered == 1
    fs = ArtfsFileSystem(registry=str(registry), cache_dir=tmp_path / "cache")
    with pytest.raises(artfs.CorruptError) as corrupt:
        fs.cat("e/p/ds:v0/nested/note.txt")
    assert corrupt.value.kind == "corrupt"
    assert "nested/note.txt" in str(corrupt.value)
    assert fs.cat("e/p/ds:v0/train.csv").startswith(b"x,y\n"), "other entries still read"
