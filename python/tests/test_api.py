"""`artfs.get/log/show/versions/lineage` and `artfs.mount`, driving the installed binary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import artfs


def test_show_versions_and_lineage_answer_as_the_cli_json(dataset: dict[str, object]) -> None:
    shown = artfs.show("ds:best", files=True)
    assert shown["name"] == "e/p/ds" and shown["version"] == "v0"
    assert "best" in shown["aliases"]
    assert {e["path"] for e in shown["entries"]} >= {"train.csv", "nested/note.txt"}
    assert [v["version"] for v in artfs.versions("ds")] == ["v0"]
    graph = artfs.lineage("e/p/ds:v0")
    assert graph["nodes"], graph


def test_log_then_get_round_trips_the_bytes(dataset: dict[str, object], tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n")
    logged = artfs.log("other", [src], aliases=["first"], metadata={"k": 1})
    assert logged["version"] == "v0" and "first" in logged["aliases"]
    assert artfs.show("other:first")["metadata"] == {"k": 1}
    folder = artfs.get("other:first", tmp_path / "out")
    assert (folder / "a.txt").read_text() == "alpha\n"


def test_errors_carry_the_cli_message_and_a_kind(dataset: dict[str, object]) -> None:
    with pytest.raises(artfs.NotFoundError) as missing:
        artfs.show("nope:latest")
    assert missing.value.kind == "not_found"
    assert "nope" in str(missing.value)
    with pytest.raises(artfs.NotFoundError):
        artfs.show("ds:v7")
    with pytest.raises(artfs.InvalidError) as invalid:
        artfs.show("a/b/c/d:latest")
    assert invalid.value.kind == "invalid"
    assert isinstance(missing.value, FileNotFoundError)


def fuse_usable() -> bool:
    return os.path.exists("/dev/fuse") and os.environ.get("ARTFS_TEST_NO_FUSE") is None


@pytest.mark.mount
@pytest.mark.skipif(not fuse_usable(), reason="FUSE is not available here")
def test_mount_yields_the_version_and_unmounts_on_exit(dataset: dict[str, object]) -> None:
    files = dataset["files"]
    assert isinstance(files, Path)
    with artfs.mount("ds:best") as path:
        assert (path / "nested" / "note.txt").read_text() == "hello\n"
        assert (path / "train.csv").read_bytes() == (files / "train.csv").read_bytes()
        mounted = path
    assert not os.path.ismount(mounted)
    assert not mounted.exists(), "the temporary mount point is removed"


@pytest.mark.mount
@pytest.mark.skipif(not fuse_usable(), reason="FUSE is not available here")
def test_mount_unmounts_when_the_block_raises(dataset: dict[str, object], tmp_path: Path) -> None:
    target = tmp_path / "mnt"
    with pytest.raises(RuntimeError), artfs.mount("ds:v0", target, readahead_files=0):
        assert os.path.ismount(target)
        raise RuntimeError("boom")
    assert not os.path.ismount(target)
    assert target.is_dir(), "a mount point the caller chose is left in place"
