"""fsspec `artfs://` reads against the same reads through `artfs mount`, cold and warm cache.

Usage (in a venv where the wheel is installed, FUSE available):
    python scripts/bench/fsspec_vs_mount.py [SIZE_MIB]
Prints one line per case: MiB/s for sequential reads, reads/s for random 4 KiB reads.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import artfs
from artfs.filesystem import ArtfsFileSystem

RANDOM_READS = 2000
READ_BYTES = 4096
SEQ_BLOCK = 8 << 20


def timed(what: str, size: int, run: Callable[[], int]) -> None:
    start = time.perf_counter()
    units = run()
    secs = time.perf_counter() - start
    if units == size:
        print(f"{what:<40} {size / secs / (1 << 20):9.1f} MiB/s")
    else:
        print(f"{what:<40} {units / secs:9.0f} reads/s")


def seq(read: Callable[[int, int], bytes], size: int) -> int:
    done = 0
    while done < size:
        done += len(read(done, SEQ_BLOCK))
    return done


def rand(read: Callable[[int, int], bytes], size: int) -> int:
    rng = random.Random(1)
    for _ in range(RANDOM_READS):
        read(rng.randrange(size - READ_BYTES), READ_BYTES)
    return RANDOM_READS


def bench_fsspec(registry: str, cache_dir: Path, cache: str, size: int) -> None:
    if cache == "cold":
        shutil.rmtree(cache_dir, ignore_errors=True)
    fs = ArtfsFileSystem(registry=registry, cache_dir=cache_dir, skip_instance_cache=True)
    version = fs.version("e/p/bench:latest")
    fh = version.open("big.bin")

    def read(offset: int, length: int) -> bytes:
        return version.read(fh, offset, length)

    timed(f"fsspec sequential ({cache})", size, lambda: seq(read, size))
    timed(f"fsspec random 4 KiB ({cache}, after it)", size, lambda: rand(read, size))
    version.close(fh)


def main() -> None:
    size = int(sys.argv[1] if len(sys.argv) > 1 else 256) << 20
    tmp = Path(tempfile.mkdtemp(prefix="artfs-bench-"))
    try:
        (tmp / "files").mkdir()
        (tmp / "files" / "big.bin").write_bytes(os.urandom(size))
        registry = str(tmp / "registry")
        artfs.log("bench", [tmp / "files"], registry=registry, cache_dir=tmp / "c0")
        for cache in ("cold", "warm"):
            bench_fsspec(registry, tmp / "fsspec-cache", cache, size)
        for cache in ("cold", "warm"):
            cache_dir = tmp / "mount-cache"
            if cache == "cold":
                shutil.rmtree(cache_dir, ignore_errors=True)
            with artfs.mount("e/p/bench:latest", registry=registry, cache_dir=cache_dir) as path:
                with open(path / "big.bin", "rb") as f:

                    def read(o: int, n: int) -> bytes:
                        f.seek(o)
                        return f.read(n)

                    timed(f"mount sequential ({cache})", size, lambda: seq(read, size))
                    timed(f"mount random 4 KiB ({cache}, after it)", size, lambda: rand(read, size))
    finally:
        subprocess.run(["sync"], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("ARTFS_ENTITY", "e")
    os.environ.setdefault("ARTFS_PROJECT", "p")
    main()
