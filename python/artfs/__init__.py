"""artfs from Python: versioned datasets and models (W&B-compatible artifacts).

- `mount(ref)`: a version as a read-only folder (FUSE), unmounted when the `with` block ends;
- `get`, `log`, `show`, `versions`, `lineage`: the CLI's commands, answers as the CLI's JSON;
- `artfs://entity/project/name:alias/path` with fsspec (`artfs.filesystem`), no FUSE needed;
- `artfs.wandb.mount(artifact)`: a drop-in for `artifact.download()` against `artfs serve`.

Failures raise `artfs.errors.ArtfsError` subclasses by kind, with the CLI's message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import _cli
from ._cli import StrPath
from ._native import __version__
from .errors import (
    ArtfsError,
    CorruptError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    UnavailableError,
)

__all__ = [
    "ArtfsError",
    "CorruptError",
    "ForbiddenError",
    "InvalidError",
    "NotFoundError",
    "UnavailableError",
    "__version__",
    "get",
    "lineage",
    "log",
    "mount",
    "show",
    "versions",
]


@contextlib.contextmanager
def mount(
    ref: str,
    path: StrPath | None = None,
    *,
    registry: str | None = None,
    cache_dir: StrPath | None = None,
    run: str | None = None,
    **options: Any,
) -> Iterator[Path]:
    """Mounts version `ref` (`[[entity/]project/]name[:alias|:vN]`) read-only at `path` (a new
    temporary directory when None) and yields the mount point; unmounts on exit, also when the
    block raises. `options` are `artfs mount` flags: `readahead_files=8`, `no_passthrough=True`.
    """
    made = path is None
    mountpoint = Path(tempfile.mkdtemp(prefix="artfs-mount-")) if path is None else Path(path)
    flags = _cli.global_flags(registry, cache_dir)
    mount_flags = _cli.option_flags({"run": run, **options})
    try:
        _cli.run([*flags, "mount", *mount_flags, ref, os.fspath(mountpoint)])
        try:
            yield mountpoint
        finally:
            _unmount(mountpoint)
    finally:
        if made:
            shutil.rmtree(mountpoint, ignore_errors=True)


def _unmount(mountpoint: Path) -> None:
    try:
        _cli.run(["unmount", os.fspath(mountpoint)])
    except ArtfsError:
        # Still busy (a file left open by the block): detach now, gone once it is closed.
        _cli.run(["unmount", "--lazy", os.fspath(mountpoint)])


def show(
    ref: str, *, registry: str | None = None, cache_dir: StrPath | None = None, files: bool = False
) -> dict[str, Any]:
    """One version as `artfs show --json` describes it (`files=True` adds its `entries`)."""
    flags = _cli.global_flags(registry, cache_dir)
    result: dict[str, Any] = _cli.run_json([*flags, "show", ref, *(["--files"] if files else [])])
    return result


def versions(name: str, *, registry: str | None = None) -> list[dict[str, Any]]:
    """Every version of artifact `name`, oldest first, as `artfs versions --json` lists them."""
    result: list[dict[str, Any]] = _cli.run_json(
        [*_cli.global_flags(registry, None), "versions", name]
    )
    return result


def lineage(ref: str, *, registry: str | None = None, depth: int | None = None) -> dict[str, Any]:
    """The lineage graph of a version (`{root, nodes, edges}`), as `artfs lineage --json`."""
    flags = _cli.global_flags(registry, None)
    extra = [] if depth is None else ["--depth", str(depth)]
    result: dict[str, Any] = _cli.run_json([*flags, "lineage", ref, *extra])
    return result


def log(
    name: str,
    paths: Sequence[StrPath],
    *,
    registry: str | None = None,
    cache_dir: StrPath | None = None,
    aliases: Sequence[str] = (),
    type: str | None = None,
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    run: str | None = None,
) -> dict[str, Any]:
    """Logs files, directories and references (`s3://…`, `PATH=NAME`) as a new version of
    `name` (none if the content is unchanged) and returns `artfs log --json`'s answer.
    """
    import json

    flags = _cli.global_flags(registry, cache_dir)
    options = _cli.option_flags(
        {
            "alias": list(aliases),
            "type": type,
            "description": description,
            "metadata": None if metadata is None else json.dumps(dict(metadata)),
            "run": run,
        }
    )
    result: dict[str, Any] = _cli.run_json(
        [*flags, "log", name, *(os.fspath(p) for p in paths), *options]
    )
    return result


def get(
    ref: str,
    root: StrPath | None = None,
    *,
    registry: str | None = None,
    cache_dir: StrPath | None = None,
    paths: Sequence[str] = (),
    path_prefix: str | None = None,
    force: bool = False,
    run: str | None = None,
) -> Path:
    """Downloads version `ref` (or some of its entries) into `root`, verified, and returns the
    folder (default: `./artifacts/<name>:<vN>`, as the CLI and the W&B SDK pick it).
    """
    flags = _cli.global_flags(registry, cache_dir)
    # Resolved once, so the folder named and the version downloaded are the same one.
    version = show(ref, registry=registry, cache_dir=cache_dir)
    label = f"{version['name']}:{version['version']}"
    if root is None:
        root = Path("artifacts") / f"{version['name'].rsplit('/', 1)[-1]}:{version['version']}"
    options = _cli.option_flags({"path_prefix": path_prefix, "force": force, "run": run})
    _cli.run([*flags, "get", label, *paths, "--root", os.fspath(root), *options])
    return Path(root)
