"""`artfs.wandb.mount(artifact)`: a drop-in for `artifact.download()` that mounts the version
instead of copying it, reading from the W&B server the SDK is configured for (`artfs serve` or
W&B itself): `WANDB_BASE_URL` and the SDK's API key (`WANDB_API_KEY` or `~/.netrc`).

    path = artfs.wandb.mount(run.use_artifact("ds:latest"))   # like .download()
    with artfs.wandb.mount("entity/project/ds:v3") as path:   # unmounted at the end
        ...

Without `with`, the mount is unmounted when the interpreter exits (or by `.unmount()`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from . import _cli

DEFAULT_BASE_URL = "https://api.wandb.ai"


def base_url() -> str:
    """The server the SDK talks to: its settings if the SDK is installed, else the environment."""
    try:
        import wandb  # type: ignore[import-not-found, unused-ignore]

        url = wandb.Api().settings.get("base_url")
        if url:
            return str(url)
    except Exception:
        pass
    return os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL


def artifact_ref(artifact: Any) -> str:
    """`entity/project/name:vN` of a `wandb.Artifact` (or a name given as text)."""
    if isinstance(artifact, str):
        return artifact
    qualified = getattr(artifact, "qualified_name", None)
    if not qualified:
        raise TypeError(f"expected a wandb Artifact or its name, got {type(artifact).__name__}")
    version = getattr(artifact, "version", None)
    name = str(qualified).rsplit(":", 1)[0]
    return f"{name}:{version}" if version else str(qualified)


class Mount(os.PathLike[str]):
    """A mounted version: a path (`os.fspath`, `str`, `/`) and a context manager."""

    def __init__(self, path: Path, made: bool) -> None:
        self.path = path
        self._made = made
        self._mounted = True
        atexit.register(self.unmount)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return os.fspath(self.path)

    def __repr__(self) -> str:
        return f"artfs.wandb.Mount({os.fspath(self.path)!r})"

    def __truediv__(self, other: str) -> Path:
        return self.path / other

    def __enter__(self) -> Path:
        return self.path

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.unmount()

    def unmount(self) -> None:
        """Unmounts (lazily if files are still open); a second call does nothing."""
        if not self._mounted:
            return
        self._mounted = False
        atexit.unregister(self.unmount)
        from . import _unmount

        _unmount(self.path)
        if self._made:
            shutil.rmtree(self.path, ignore_errors=True)


def mount(artifact: Any, root: str | os.PathLike[str] | None = None, **options: Any) -> Mount:
    """Mounts `artifact` (a `wandb.Artifact` or `entity/project/name:alias`) at `root` (a new
    temporary directory when None), read from the SDK's server; `options` are `artfs mount`
    flags, as for `artfs.mount`.
    """
    made = root is None
    path = Path(tempfile.mkdtemp(prefix="artfs-wandb-")) if root is None else Path(root)
    flags = _cli.option_flags(options)
    try:
        _cli.run(
            ["--registry", base_url(), "mount", *flags, artifact_ref(artifact), os.fspath(path)]
        )
    except BaseException:
        if made:
            shutil.rmtree(path, ignore_errors=True)
        raise
    return Mount(path, made)
