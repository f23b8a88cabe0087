"""The package's exceptions: one class per kind of failure, each carrying the CLI's message.

The kinds are the ones `artfs` itself decides (`ARTFS_ERROR_FORMAT=json` on the CLI, the same
decision in the extension module), so a caller can act on *what* went wrong without parsing text.
"""

from __future__ import annotations


class ArtfsError(Exception):
    """Any failure of artfs; `kind` says which (`not_found`, `forbidden`, ...), `str()` why."""

    kind = "other"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(ArtfsError, FileNotFoundError):
    """A name (artifact, version, alias, file) that does not exist."""

    kind = "not_found"


class ForbiddenError(ArtfsError, PermissionError):
    """Credentials, or the reader's own policy, refused the request."""

    kind = "forbidden"


class InvalidError(ArtfsError, ValueError):
    """The request cannot be taken as it is (a bad name, option or path)."""

    kind = "invalid"


class CorruptError(ArtfsError, OSError):
    """Stored bytes are not what the manifest promises; nothing unverified was returned."""

    kind = "corrupt"


class UnavailableError(ArtfsError, OSError):
    """The registry or a blob did not answer; retrying may help."""

    kind = "unavailable"


_BY_KIND: dict[str, type[ArtfsError]] = {
    cls.kind: cls
    for cls in (NotFoundError, ForbiddenError, InvalidError, CorruptError, UnavailableError)
}


def error(kind: str, message: str) -> ArtfsError:
    """The exception for `kind` (an unknown kind is a plain `ArtfsError`)."""
    return _BY_KIND.get(kind, ArtfsError)(message)
