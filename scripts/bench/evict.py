#!/usr/bin/env python3
"""Evicts the given files (directories: every file below) from the page cache, one file at a time
(fsync, then posix_fadvise DONTNEED), so a benchmark's cold run does not drop the whole machine's
cache (`echo 3 > drop_caches`) under other work that is measuring too."""
import os
import sys


def evict(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        try:
            os.fsync(fd)
        except OSError:
            pass
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


for arg in sys.argv[1:]:
    if os.path.isdir(arg):
        for root, dirs, files in os.walk(arg):
            # Never into a mount below (speed.sh keeps its FUSE mounts in BENCH_DIR): opening
            # its files would fetch them, warming the very caches a cold run needs empty.
            dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(root, d))]
            for name in files:
                evict(os.path.join(root, name))
    else:
        evict(arg)
