"""`artfs://entity/project/name:alias/path` for fsspec (and so pandas, pyarrow, dask, ...).

Reads go through the extension module (`artfs._native`), in-process: the same filesystem logic
as the mount, the same shared cache, every byte verified against the manifest before it is
returned (a tampered blob raises `artfs.CorruptError`), and no FUSE. A large file not yet cached
is read lazily, chunk by chunk, so a ranged read downloads little more than it asks for.

A path's first component with a `:` ends the artifact (`e/p/ds:v3`, `ds:latest`); what follows
is the file inside the version. The alias is resolved once per filesystem instance, so one
instance keeps reading the version it first saw.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from ._native import Version
from .errors import InvalidError


class ArtfsFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """fsspec over an artfs registry; storage options: `registry`, `entity`, `project`,
    `cache_dir`, `cache_size` (each defaulting to the `ARTFS_*` environment, as the CLI does).
    """

    protocol = "artfs"
    root_marker = ""

    def __init__(
        self,
        registry: str | None = None,
        entity: str | None = None,
        project: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        cache_size: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._settings = {
            "registry": registry,
            "entity": entity,
            "project": project,
            "cache_dir": None if cache_dir is None else os.fspath(cache_dir),
            "cache_size": cache_size,
        }
        self._versions: dict[str, Version] = {}
        self._lock = threading.Lock()

    def version(self, ref: str) -> Version:
        """The version `ref` names, resolved on first use."""
        with self._lock:
            found = self._versions.get(ref)
            if found is None:
                found = Version(ref, **self._settings)
                self._versions[ref] = found
            return found

    def _split(self, path: str) -> tuple[Version, str, str]:
        """`(version, path inside it, the version's prefix as this filesystem names it)`."""
        path = self._strip_protocol(path)
        parts = path.split("/")
        for i, part in enumerate(parts):
            if ":" in part:
                ref = "/".join(parts[: i + 1])
                return self.version(ref), "/".join(parts[i + 1 :]), ref
        raise InvalidError(
            f"artfs://{path}: name a version, e.g. artfs://{path}:latest/<file> "
            "(`entity/project/name:alias` then the path inside it)"
        )

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        text = str(path)
        if text.startswith("artfs://"):
            text = text[len("artfs://") :]
        return text.strip("/")

    def _entry(self, name: str, is_dir: bool, size: int) -> dict[str, Any]:
        kind = "directory" if is_dir else "file"
        return {"name": name, "size": 0 if is_dir else size, "type": kind}

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        version, inner, ref = self._split(path)
        is_dir, size = version.stat(inner)
        base = f"{ref}/{inner}".rstrip("/")
        if not is_dir:
            entries = [self._entry(base, False, size)]
        else:
            entries = [self._entry(f"{base}/{n}", d, s) for n, d, s in version.list(inner)]
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        version, inner, ref = self._split(path)
        is_dir, size = version.stat(inner)
        return self._entry(f"{ref}/{inner}".rstrip("/"), is_dir, size)

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> ArtfsFile:
        if mode != "rb":
            raise InvalidError(f"artfs://{path}: artfs versions are read-only (mode {mode!r})")
        return ArtfsFile(self, path, mode, block_size or "default", cache_options, **kwargs)

    def ukey(self, path: str) -> str:
        # A version never changes: its label and the path name the bytes for good.
        version, inner, _ = self._split(path)
        return f"{version.label}/{inner}"


class ArtfsFile(AbstractBufferedFile):  # type: ignore[misc]
    """One open file of a version; its handle keeps the cached blob from eviction until close."""

    def __init__(
        self,
        fs: ArtfsFileSystem,
        path: str,
        mode: str,
        block_size: int | str,
        cache_options: dict[str, Any] | None,
        **kwargs: Any,
    ) -> None:
        self._fh: int | None = None  # set first: fsspec's __del__ closes even a failed open
        version, inner, _ = fs._split(path)
        self._version = version
        self._fh = version.open(inner)
        super().__init__(fs, path, mode, block_size, cache_options=cache_options or {}, **kwargs)

    def _fetch_range(self, start: int, end: int) -> bytes:
        if self._fh is None or end <= start:
            return b""
        return self._version.read(self._fh, start, end - start)

    def close(self) -> None:
        super().close()
        if self._fh is not None:
            self._version.close(self._fh)
            self._fh = None
