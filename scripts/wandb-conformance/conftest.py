"""Fixtures of W&B's system tests, pointed at the `artfs serve` that run.sh started.

Same fixture names and scopes as W&B's own `tests/system_tests/conftest.py`, so its tests run
unmodified; what differs is where users come from (`backend_fixtures.py`) and that the server
is already running (`ARTFS_CONFORMANCE_URL`).
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Callable, Generator
from dataclasses import dataclass

import pytest
import wandb

from .backend_fixtures import BackendFixtureFactory, LocalWandbBackendAddress


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--wandb-verbose", action="store_true", default=False)


@pytest.fixture(scope="session")
def wandb_verbose(request: pytest.FixtureRequest) -> bool:
    return request.config.getoption("--wandb-verbose", default=False)


@pytest.fixture(scope="session")
def local_wandb_backend() -> LocalWandbBackendAddress:
    url = urllib.parse.urlsplit(os.environ["ARTFS_CONFORMANCE_URL"])
    return LocalWandbBackendAddress(host=url.hostname or "127.0.0.1", base_port=url.port or 80)


@pytest.fixture(scope="session")
def use_local_wandb_backend(
    local_wandb_backend: LocalWandbBackendAddress,
) -> Generator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_BASE_URL", local_wandb_backend.base_url)
        yield


@pytest.fixture(scope="session")
def backend_fixture_factory(
    worker_id: str, use_local_wandb_backend: None
) -> Generator[BackendFixtureFactory]:
    with BackendFixtureFactory(worker_id=worker_id) as factory:
        yield factory


@contextlib.contextmanager
def _logged_in(factory: BackendFixtureFactory) -> Generator[str]:
    name = factory.make_user()
    with pytest.MonkeyPatch.context() as mp:
        for var in ("WANDB_API_KEY", "WANDB_ENTITY", "WANDB_USERNAME"):
            mp.setenv(var, name)
        yield name


@pytest.fixture
def user(
    request: pytest.FixtureRequest, backend_fixture_factory: BackendFixtureFactory
) -> Generator[str]:
    assert "module_user" not in request.fixturenames, "use `user` or `module_user`, not both"
    with _logged_in(backend_fixture_factory) as name:
        yield name


@pytest.fixture(scope="module")
def module_user(
    request: pytest.FixtureRequest, backend_fixture_factory: BackendFixtureFactory
) -> Generator[str]:
    assert "user" not in request.fixturenames, "use `user` or `module_user`, not both"
    with _logged_in(backend_fixture_factory) as name:
        yield name


@pytest.fixture
@pytest.mark.usefixtures("skip_verify_login")
def api(user: str) -> wandb.Api:
    return wandb.Api(api_key=user)


@pytest.fixture(scope="module")
@pytest.mark.usefixtures("skip_verify_login")
def make_module_api(module_user: str) -> Callable[[], wandb.Api]:
    return lambda: wandb.Api(api_key=module_user)


@pytest.fixture
def module_api(make_module_api: Callable[[], wandb.Api]) -> wandb.Api:
    return make_module_api()


@dataclass
class UserOrg:
    username: str
    organization_names: list[str]


@pytest.fixture
def user_in_orgs_factory(
    backend_fixture_factory: BackendFixtureFactory, user: str
) -> Callable[[int], UserOrg]:
    def make(number_of_orgs: int = 1) -> UserOrg:
        if number_of_orgs <= 0:
            raise ValueError("number_of_orgs must be positive")
        orgs = [backend_fixture_factory.make_org(username=user) for _ in range(number_of_orgs)]
        return UserOrg(username=user, organization_names=orgs)

    return make


# The backend spy is W&B's own proxy (tests/fixtures/wandb_backend_spy), used unchanged: it
# forwards to artfs like to any server and records what passes.
@pytest.fixture(scope="session")
def wandb_backend_proxy_server(local_wandb_backend: LocalWandbBackendAddress):
    from tests.fixtures.wandb_backend_spy import spy_proxy

    with spy_proxy(
        target_host=local_wandb_backend.host, target_port=local_wandb_backend.base_port
    ) as proxy:
        yield proxy


@pytest.fixture
def wandb_backend_spy(user: str, wandb_backend_proxy_server, monkeypatch: pytest.MonkeyPatch):
    _ = user
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{wandb_backend_proxy_server.port}")
    with wandb_backend_proxy_server.spy() as spy:
        yield spy
