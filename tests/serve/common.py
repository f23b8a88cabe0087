"""Shared helpers for the serve flow scripts: run under the env the Rust test sets up."""
import hashlib
import logging
import os
import sys

# Fail on warnings and errors the SDK logs: they mean the server answered wrongly.
class _Fail(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(self.format(record))

FAIL = _Fail()
logging.getLogger("wandb").addHandler(FAIL)

ENTITY = os.environ["FLOW_ENTITY"]
PROJECT = os.environ["FLOW_PROJECT"]
TMP = os.environ["FLOW_TMP"]


def path(*parts):
    return os.path.join(TMP, *parts)


def write(rel, data):
    p = path(rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    return p


def tree(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            full = os.path.join(d, f)
            with open(full, "rb") as fh:
                out[os.path.relpath(full, root)] = hashlib.md5(fh.read()).hexdigest()
    return out


def check(cond, msg):
    if not cond:
        print("FLOW FAILED:", msg, file=sys.stderr)
        sys.exit(1)


def done(result=None):
    check(not FAIL.records, "the SDK logged warnings/errors: %r" % FAIL.records)
    import json
    print("FLOW-RESULT " + json.dumps(result or {}))
