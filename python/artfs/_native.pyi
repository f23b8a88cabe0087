"""Types of the extension module (`src/python.rs`)."""

from os import PathLike

__version__: str

class Version:
    """One resolved version of an artifact, read in-process (verified, from the shared cache)."""

    def __init__(
        self,
        artifact: str,
        registry: str | None = None,
        entity: str | None = None,
        project: str | None = None,
        cache_dir: str | PathLike[str] | None = None,
        cache_size: str | None = None,
    ) -> None: ...
    @property
    def label(self) -> str: ...
    def stat(self, path: str) -> tuple[bool, int]: ...
    def list(self, path: str) -> list[tuple[str, bool, int]]: ...
    def open(self, path: str) -> int: ...
    def read(self, fh: int, offset: int, length: int) -> bytes: ...
    def close(self, fh: int) -> None: ...
