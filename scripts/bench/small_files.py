#!/usr/bin/env python3
"""Small-file readers for `small.sh`; each prints the seconds it took (and checks it read all).

Usage:
  small_files.py make DIR N BYTES KIND      write N files in 10 class folders; KIND png (noise
                                            images of about BYTES, Pillow) or raw (exactly BYTES)
  small_files.py openread ROOT NAMES        open + read every file once, in name order, one thread
  small_files.py epoch ROOT NAMES WORKERS   a DataLoader-like epoch: a seeded shuffle split into
                                            batches of 32, WORKERS processes (multiprocessing
                                            pool, started before the clock) each opening,
                                            reading and decoding a PNG with Pillow to an array

The epoch is what torch's DataLoader(num_workers=WORKERS, shuffle=True) does per item, without
torch (its CPU wheel does not fit this machine's disk budget): per file an open, a read, a PNG
decode; batches go back to the parent through a pipe.
"""
import os
import random
import sys
import time

BATCH = 32


def make(out, n, size, kind):
    for c in range(10):
        os.makedirs(os.path.join(out, f"class{c}"), exist_ok=True)
    rng = random.Random(7)
    if kind == "png":
        from PIL import Image

        # RGB noise hardly compresses: side² × 3 bytes ≈ the requested size.
        side = max(4, int((size / 3) ** 0.5))
    for i in range(n):
        path = os.path.join(out, f"class{i % 10}", f"img{i:05d}.{kind}")
        if kind == "png":
            Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3)).save(path)
        else:
            with open(path, "wb") as f:
                f.write(rng.randbytes(size))


def names(path):
    with open(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def openread(root, names_file):
    files = names(names_file)
    total = 0
    t0 = time.perf_counter()
    for name in files:
        with open(os.path.join(root, name), "rb") as f:
            total += len(f.read())
    print(f"{time.perf_counter() - t0:.4f}")
    if total == 0:
        sys.exit("read nothing")


def load_batch(args):
    import numpy
    from PIL import Image

    root, batch = args
    total = 0
    for name in batch:
        with open(os.path.join(root, name), "rb") as f:
            image = Image.open(f)
            image.load()
            total += int(numpy.asarray(image.convert("RGB"), dtype=numpy.uint8).shape[0])
    return len(batch), total


def epoch(root, names_file, workers):
    import multiprocessing

    files = names(names_file)
    random.Random(14).shuffle(files)
    batches = [(root, files[i : i + BATCH]) for i in range(0, len(files), BATCH)]
    with multiprocessing.Pool(workers) as pool:
        # Warm the workers (imports) before the clock, as a DataLoader's persistent workers are.
        pool.map(load_batch, [(root, [])] * workers)
        t0 = time.perf_counter()
        done = sum(n for n, _ in pool.imap_unordered(load_batch, batches))
        print(f"{time.perf_counter() - t0:.4f}")
    if done != len(files):
        sys.exit(f"decoded {done} of {len(files)} files")


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        make(rest[0], int(rest[1]), int(rest[2]), rest[3])
    elif cmd == "openread":
        openread(rest[0], rest[1])
    elif cmd == "epoch":
        epoch(rest[0], rest[1], int(rest[2]))
    else:
        sys.exit(__doc__)
