"""W&B's backend fixture factory, answered by artfs instead of W&B's fixture service.

W&B's system tests create users, orgs and teams through a side service of their test server;
here every such request is an `artfs` command against the registry `artfs serve` is serving.
The names and signatures are the ones the tests import (`BackendFixtureFactory`,
`LocalWandbBackendAddress`, `TeamAndOrgNames`, `random_string`).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from string import ascii_lowercase, digits
from typing import Literal

Role = Literal["admin", "member", "viewer"]


@dataclass(frozen=True)
class LocalWandbBackendAddress:
    host: str
    base_port: int
    # W&B's fixture service has a port of its own; artfs answers fixtures on the command line.
    fixture_port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.base_port}"

    @property
    def fixture_service_url(self) -> str:
        return self.base_url


@dataclass(frozen=True)
class TeamAndOrgNames:
    team: str
    org: str


def random_string(alphabet: str = ascii_lowercase + digits, length: int = 12) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


class FixtureError(RuntimeError):
    """An artfs fixture command failed; the message carries its stderr."""


def artfs(*args: str) -> str:
    """Runs `artfs ARGS` on the served registry and returns its stdout."""
    cmd = [os.environ["ARTFS_BIN"], "-q", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise FixtureError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _has_subcommand(name: str) -> bool:
    done = subprocess.run(
        [os.environ["ARTFS_BIN"], name, "--help"], capture_output=True, timeout=60
    )
    return done.returncode == 0


@dataclass
class BackendFixtureFactory:
    worker_id: str
    _cleanup: list[tuple[str, ...]] = field(default_factory=list, init=False)
    _has_users: bool | None = field(default=None, init=False)

    def __enter__(self) -> BackendFixtureFactory:
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def make_user(self, name: str | None = None, admin: bool = False) -> str:
        """A new user whose API key is their user name, as W&B's fixture makes them."""
        name = name or f"user_{self.worker_id}-{random_string(digits + 'abcdef', 40)}"
        if self._has_users is None:
            self._has_users = _has_subcommand("user")
        if self._has_users:
            # W&B's users always have an email (its fixture server makes one per user).
            artfs("user", "create", name, "--email", f"{name}@example.com",
                  *(["--admin"] if admin else []))
        artfs("key", "create", name, "--secret", name)
        return name

    def make_org(self, name: str | None = None, *, username: str) -> str:
        name = name or f"org-{self.worker_id}-{random_string()}"
        artfs("org", "create", name, "--admin", username)
        self._cleanup.append(("org", "delete", name))
        return name

    def add_org_user(self, org: str, *, role: Role) -> str:
        username = self.make_user()
        artfs("org", "add-member", org, username, "--role", role)
        return username

    def make_team(
        self,
        name: str | None = None,
        *,
        username: str,
        org_name: str | None = None,
        plan_name: str | None = None,
    ) -> TeamAndOrgNames:
        # artfs has no plans; the name is accepted for the tests' sake and unused.
        _ = plan_name
        org_name = self.make_org(org_name, username=username)
        name = name or f"team-{self.worker_id}-{random_string()}"
        artfs("team", "create", name, "--org", org_name, "--member", username)
        return TeamAndOrgNames(team=name, org=org_name)

    def cleanup(self) -> None:
        while self._cleanup:
            cmd = self._cleanup.pop()
            try:
                artfs(*cmd)
            except FixtureError as e:
                print(f"cleanup: {e}", file=sys.stderr)
