"""README's quick start run verbatim with the `artfs` that `pip install` put on PATH.

What a new user of the wheel gets: no Rust toolchain anywhere on PATH, a fresh HOME and XDG
directories, no artfs settings in the environment; every line the README shows is compared.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
MOUNTS = ("mnt/artifacts", "mnt/bikes")


@dataclass
class Step:
    command: str
    shown: list[str] = field(default_factory=list)


def quick_start(readme: str) -> list[Step]:
    """The console block after `## Quick start`: `$ ` lines are commands, what follows each is
    its output; blank lines only separate."""
    section = readme[readme.index("## Quick start") :]
    block = section.split("```console\n", 1)[1]
    block = block[: block.index("```")]
    steps: list[Step] = []
    for line in filter(str.strip, block.splitlines()):
        if line.startswith("$ "):
            steps.append(Step(line[2:]))
        else:
            steps[-1].shown.append(line)
    return steps


def script(steps: list[Step]) -> str:
    """One shell for every step (`export` carries over), each framed by markers and its status."""
    body = "".join(
        f"echo '@@step {i}'\n{{\n{s.command}\n}}\necho \"@@rc $?\"\n" for i, s in enumerate(steps)
    )
    return "exec 2>&1\n" + body


def split_output(out: str, count: int) -> list[tuple[list[str], int | None]]:
    results: list[tuple[list[str], int | None]] = [([], None) for _ in range(count)]
    current: int | None = None
    for line in out.splitlines():
        if line.startswith("@@step "):
            current = int(line.removeprefix("@@step "))
        elif line.startswith("@@rc ") and current is not None:
            results[current] = (results[current][0], int(line.removeprefix("@@rc ")))
            current = None
        elif current is not None:
            results[current][0].append(line)
    return results


def toolchain_free_path() -> str:
    """The venv's scripts first, then the system directories; never `~/.cargo/bin`."""
    system = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    return os.pathsep.join([str(Path(sys.executable).parent), *system])


def test_the_quick_start_parses_into_commands_and_their_output() -> None:
    steps = quick_start("# x\n## Quick start\n```console\n$ a  # c\nout 1\n\nout 2\n$ b\n```\n")
    assert [(s.command, len(s.shown)) for s in steps] == [("a  # c", 2), ("b", 0)]
    out = "@@step 0\nx\n@@rc 0\n@@step 1\n@@rc 3\n"
    assert split_output(out, 2) == [(["x"], 0), ([], 3)]


@pytest.mark.mount
def test_the_quick_start_runs_verbatim_with_the_installed_binary(tmp_path: Path) -> None:
    path = toolchain_free_path()
    for tool in ("cargo", "rustc", "rustup"):
        assert shutil.which(tool, path=path) is None, f"{tool} is on the quick start's PATH"
    assert shutil.which("artfs", path=path) == str(Path(sys.executable).parent / "artfs")
    steps = quick_start(README.read_text())
    assert len(steps) >= 10, steps
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTFS_")}
    env.update(HOME=str(home), PATH=path, LC_ALL="C")
    for var, sub in [
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CONFIG_HOME", ".config"),
    ]:
        env[var] = str(home / sub)
    try:
        out = subprocess.run(
            ["bash", "-c", script(steps)], cwd=work, env=env, capture_output=True, text=True
        ).stdout
    finally:
        still = [home / m for m in MOUNTS if os.path.ismount(home / m)]
        for m in still:
            subprocess.run(["fusermount3", "-u", str(m)], check=False)
    for step, (printed, rc) in zip(steps, split_output(out, len(steps)), strict=True):
        assert rc == 0, f"`{step.command}` failed; it printed:\n" + "\n".join(printed)
        if step.shown:
            assert printed == step.shown, f"`{step.command}` prints other lines than the README"
    assert not still, f"the quick start left {still} mounted"
    assert (home / ".local/share/artfs/registry/artfs-registry.json").is_file()
