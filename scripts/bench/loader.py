#!/usr/bin/env python3
"""A shuffled data loader's first epoch, with the standard library only: WORKERS threads take the
next file of a seeded random permutation of NAMES_FILE (paths below ROOT) and read it whole.

Usage: loader.py ROOT WORKERS NAMES_FILE [SEED]   (prints files and bytes read)"""
import os
import random
import sys
import threading

root, workers, names_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 14
with open(names_file) as f:
    names = [line.rstrip("\n") for line in f if line.strip()]
random.Random(seed).shuffle(names)
order = iter(names)
lock = threading.Lock()
totals = [0, 0]


def work():
    while True:
        with lock:
            name = next(order, None)
        if name is None:
            return
        with open(os.path.join(root, name), "rb") as f:
            n = len(f.read())
        with lock:
            totals[0] += 1
            totals[1] += n


threads = [threading.Thread(target=work) for _ in range(workers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"{totals[0]} files, {totals[1]} bytes")
if totals[0] != len(names):
    sys.exit(f"read {totals[0]} of {len(names)} files")
