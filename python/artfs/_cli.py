"""Running the `artfs` binary that the wheel installs, with its errors as exceptions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from .errors import ArtfsError, error

StrPath = Union[str, "os.PathLike[str]"]


def binary() -> str:
    """The `artfs` binary: `$ARTFS_BIN`, else the one installed beside this package, else PATH."""
    explicit = os.environ.get("ARTFS_BIN")
    if explicit:
        return explicit
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(scripts) / "artfs"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("artfs")
    if found is None:
        raise ArtfsError("the artfs binary is not installed: reinstall the wheel or set ARTFS_BIN")
    return found


def global_flags(registry: str | None, cache_dir: StrPath | None) -> list[str]:
    """The CLI's global flags for the given settings (unset ones come from the environment)."""
    flags = []
    if registry is not None:
        flags += ["--registry", registry]
    if cache_dir is not None:
        flags += ["--cache-dir", os.fspath(cache_dir)]
    return flags


def option_flags(options: Mapping[str, Any]) -> list[str]:
    """`readahead_files=8` as `--readahead-files 8`; `True` as a bare flag; `False`/`None` not."""
    flags: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, (list, tuple)):
            for item in value:
                flags += [flag, os.fspath(item) if isinstance(item, os.PathLike) else str(item)]
        else:
            flags += [flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    return flags


def run(args: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """Runs `artfs ARGS` and returns its stdout; a failure raises the kind the CLI reports."""
    full_env = {**os.environ, **(env or {}), "ARTFS_ERROR_FORMAT": "json"}
    done = subprocess.run(
        [binary(), "--quiet", *args],
        env=full_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise _failure(done.stderr, done.returncode)
    return done.stdout


def run_json(args: Sequence[str], env: Mapping[str, str] | None = None) -> Any:
    """Runs `artfs ARGS --json` and returns the parsed output."""
    return json.loads(run([*args, "--json"], env))


def _failure(stderr: str, code: int) -> ArtfsError:
    # The last JSON line is the error; lines before it are warnings the CLI printed on the way.
    for line in reversed(stderr.strip().splitlines()):
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if isinstance(report, dict) and "error" in report:
            return error(str(report.get("kind", "other")), str(report["error"]))
    # Not a reported error: clap's usage errors (exit 2) and the like, in the CLI's own words.
    message = stderr.strip() or f"artfs exited with status {code}"
    return error("invalid" if code == 2 else "other", message)
