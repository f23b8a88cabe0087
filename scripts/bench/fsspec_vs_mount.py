"""fsspec `artfs://` reads against the same reads through `artfs mount` and after `artfs get`.

Usage (in a venv where the wheel is installed, FUSE available):
    python scripts/bench/fsspec_vs_mount.py [SIZE_MIB] [REPS]
One file of SIZE_MIB random bytes in a local registry, read four ways by each reader: sequential
and random 4 KiB reads, each with a cold cache (fresh cache dir, fresh mount, fresh download) and
warm (the same again). Cases interleave within a repetition; the median of REPS is reported, as
a Markdown table on stdout (MiB/s for sequential, reads/s for random; `get` includes its download).
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import artfs
from artfs.filesystem import ArtfsFileSystem

RANDOM_READS = 2000
READ_BYTES = 4096
SEQ_BLOCK = 8 << 20
Read = Callable[[int, int], bytes]


def seq(read: Read, size: int) -> None:
    done = 0
    while done < size:
        done += len(read(done, SEQ_BLOCK))


def rand(read: Read, size: int) -> None:
    rng = random.Random(1)
    for _ in range(RANDOM_READS):
        read(rng.randrange(size - READ_BYTES), READ_BYTES)


@contextmanager
def fsspec_reader(registry: str, cache_dir: Path) -> Iterator[Read]:
    fs = ArtfsFileSystem(registry=registry, cache_dir=cache_dir, skip_instance_cache=True)
    version = fs.version("e/p/bench:latest")
    fh = version.open("big.bin")
    try:
        yield lambda offset, length: version.read(fh, offset, length)
    finally:
        version.close(fh)


@contextmanager
def file_reader(path: Path) -> Iterator[Read]:
    with open(path, "rb") as f:

        def read(offset: int, length: int) -> bytes:
            f.seek(offset)
            return f.read(length)

        yield read


@contextmanager
def mount_reader(registry: str, cache_dir: Path) -> Iterator[Read]:
    with artfs.mount("e/p/bench:latest", registry=registry, cache_dir=cache_dir) as path:
        with file_reader(path / "big.bin") as read:
            yield read


@contextmanager
def get_reader(registry: str, cache_dir: Path, dest: Path) -> Iterator[Read]:
    """`artfs get` of the version, then reads of the local copy: the download counts."""
    shutil.rmtree(dest, ignore_errors=True)
    root = artfs.get("e/p/bench:latest", dest, registry=registry, cache_dir=cache_dir)
    with file_reader(root / "big.bin") as read:
        yield read


def one_case(open_reader: Callable[[], AbstractContextManager[Read]], pattern: str, size: int) -> float:
    """Seconds from opening the reader (mount, download, fsspec handle) to the last byte."""
    start = time.perf_counter()
    with open_reader() as read:
        (seq if pattern == "sequential" else rand)(read, size)
    return time.perf_counter() - start


def main() -> None:
    size = int(sys.argv[1] if len(sys.argv) > 1 else 256) << 20
    reps = int(sys.argv[2] if len(sys.argv) > 2 else 3)
    tmp = Path(tempfile.mkdtemp(prefix="artfs-bench-"))
    results: dict[tuple[str, str, str], list[float]] = {}
    try:
        (tmp / "files").mkdir()
        (tmp / "files" / "big.bin").write_bytes(os.urandom(size))
        registry = str(tmp / "registry")
        artfs.log("bench", [tmp / "files"], registry=registry, cache_dir=tmp / "c0")
        readers = {
            "fsspec": lambda c: (lambda: fsspec_reader(registry, c)),
            "mount": lambda c: (lambda: mount_reader(registry, c)),
            "get": lambda c: (lambda: get_reader(registry, c, tmp / "got")),
        }
        for _ in range(reps):
            for pattern in ("sequential", "random 4 KiB"):
                for name, make in readers.items():
                    cache_dir = tmp / f"cache-{name}"
                    shutil.rmtree(cache_dir, ignore_errors=True)
                    for cache in ("cold", "warm"):
                        secs = one_case(make(cache_dir), pattern, size)
                        results.setdefault((pattern, cache, name), []).append(secs)
    finally:
        subprocess.run(["sync"], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    print("| read | fsspec | mount | get (download + local reads) |")
    print("| --- | --- | --- | --- |")
    for pattern in ("sequential", "random 4 KiB"):
        for cache in ("cold", "warm"):
            cells = []
            for name in ("fsspec", "mount", "get"):
                secs = statistics.median(results[(pattern, cache, name)])
                rate = (
                    f"{size / secs / (1 << 20):.0f} MiB/s"
                    if pattern == "sequential"
                    else f"{RANDOM_READS / secs:.0f} reads/s"
                )
                cells.append(f"{rate} ({secs:.2f} s)")
            print(f"| {pattern}, {cache} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    os.environ.setdefault("ARTFS_ENTITY", "e")
    os.environ.setdefault("ARTFS_PROJECT", "p")
    main()
