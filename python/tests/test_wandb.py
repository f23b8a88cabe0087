"""`artfs.wandb.mount` driven by the real `wandb` SDK against a real `artfs serve`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import artfs_bin

import artfs


@pytest.mark.mount
def test_wandb_mount_is_a_drop_in_for_download(dataset: dict[str, object], tmp_path: Path) -> None:
    sdk_python = os.environ.get("ARTFS_WANDB_PYTHON")
    if not sdk_python or not os.path.exists("/dev/fuse"):
        pytest.skip("needs the services' wandb venv (ARTFS_WANDB_PYTHON) and FUSE")
    key = subprocess.run(
        [artfs_bin(), "-q", "key", "create", "ana", "--entities", "e"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [artfs_bin(), "serve", "--listen", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip().removeprefix("listening on ")
        # Only the installed package on the SDK's path: not this venv's other packages.
        packages = tmp_path / "packages"
        packages.mkdir()
        (packages / "artfs").symlink_to(Path(artfs.__file__).parent)
        env = {
            **os.environ,
            "WANDB_BASE_URL": url,
            "WANDB_API_KEY": key,
            "WANDB_SILENT": "true",
            "WANDB_DIR": str(tmp_path / "wandb"),
            "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
            "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
            "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
            "NETRC": str(tmp_path / "netrc"),
            "PYTHONPATH": str(packages),
            "ARTFS_BIN": artfs_bin(),
            "FLOW_TMP": str(tmp_path),
        }
        flow = Path(__file__).with_name("wandb_flow.py")
        done = subprocess.run(
            [sdk_python, str(flow)], env=env, capture_output=True, text=True, timeout=300
        )
        served = (tmp_path / "serve.log").read_text()[-3000:]
        report = f"{done.stdout}\n{done.stderr}\n--- serve log ---\n{served}"
        assert done.returncode == 0 and "FLOW-OK" in done.stdout, report
    finally:
        server.kill()
        server.wait()
        log.close()
