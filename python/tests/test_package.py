"""The wheel installed into a venv: the package, its extension and the binary on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import entry_points, version
from pathlib import Path

import artfs
import artfs._native


def test_the_installed_package_is_imported_not_the_source_tree() -> None:
    site = Path(sysconfig.get_path("purelib")).resolve()
    assert Path(artfs.__file__).resolve().is_relative_to(site)
    assert Path(artfs._native.__file__).resolve().is_relative_to(site)
    assert (Path(artfs.__file__).parent / "py.typed").is_file()


def test_pip_put_the_binary_on_path_with_the_crates_version() -> None:
    scripts = Path(sys.executable).parent
    assert shutil.which("artfs", path=str(scripts) + os.pathsep + os.environ["PATH"]) == str(
        scripts / "artfs"
    )
    out = subprocess.run(
        [str(scripts / "artfs"), "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["artfs", artfs.__version__]
    assert version("artfs") == artfs.__version__


def test_fsspec_finds_the_artfs_protocol_through_its_entry_point() -> None:
    specs = entry_points(group="fsspec.specs")
    assert [e.value for e in specs if e.name == "artfs"] == ["artfs.filesystem:ArtfsFileSystem"]
