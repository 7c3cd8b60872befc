"""`order-engine` as users run it: flags, help, start time, and one line for each common mistake."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import ORDER_ENGINE, free_port, stop_processes
from tests.services import TEST_DATABASE_URL, TEST_REDIS_URL, create_database, drop_database

ROLES = ["serve", "api", "worker", "projector"]
HEAVY = ("litestar", "taskiq", "uvicorn", "alembic", "prometheus_client", "httpx")


def order_engine(
    *arguments: str, cwd: Path, timeout: float = 60, **settings: str
) -> subprocess.CompletedProcess:
    """Runs `order-engine` with only `settings` of the engine's variables set."""
    unset = ("DATABASE_URL", "REDIS_URL", "MARKET_URL")
    env = {name: value for name, value in os.environ.items() if name not in unset}
    return subprocess.run(
        [ORDER_ENGINE, *arguments],
        env=env | settings,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("role", ROLES)
def test_each_role_takes_its_main_settings_as_flags_and_help_names_their_variables(role, tmp_path):
    completed = order_engine(role, "--help", cwd=tmp_path, COLUMNS="200")
    assert completed.returncode == 0
    flags = {"--database-url": "DATABASE_URL", "--redis-url": "REDIS_URL", "--log-level": "LOG_LEVEL"}
    if role in ("serve", "api"):
        flags |= {"--host": "HOST", "--port": "PORT"}
    if role in ("serve", "worker"):
        flags |= {"--worker-concurrency": "WORKER_CONCURRENCY"}
    for flag, variable in flags.items():
        assert flag in completed.stdout and f"env var: {variable}" in completed.stdout, (
            flag,
            completed.stdout,
        )


def test_top_level_help_lists_every_environment_variable(tmp_path):
    completed = order_engine("--help", cwd=tmp_path, COLUMNS="200")
    example = (Path(__file__).parents[2] / ".env.example").read_text()
    variables = {line.lstrip("# ").split("=")[0] for line in example.splitlines() if "=" in line}
    assert variables and all(variable in completed.stdout for variable in variables)


def test_flags_win_over_the_environment(tmp_path):
    port = free_port()
    database = tmp_path / "flagged.db"
    process = subprocess.Popen(
        [ORDER_ENGINE, "serve", "--port", str(port), "--database-url", f"sqlite:///{database}"],
        env={**os.environ, "PORT": str(free_port()), "DATABASE_URL": f"sqlite:///{tmp_path / 'env.db'}"},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _healthy(f"http://127.0.0.1:{port}"):  # another process: polling is the only sign
            assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
    finally:
        stop_processes([process])
    assert database.exists() and not (tmp_path / "env.db").exists()


def _healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health").status_code == 200
    except httpx.TransportError:
        return False


def test_the_cli_loads_only_what_the_command_needs(tmp_path):
    """What makes `--help` and `projections status` start fast: neither imports the app, the task queue,
    the web server or the migrations."""
    env = {"DATABASE_URL": _migrated_sqlite(tmp_path)}
    script = f"""
import sys
from typer.testing import CliRunner
import engine.cli
at_start = [m for m in {HEAVY!r} if m in sys.modules]
result = CliRunner().invoke(engine.cli.app, ["projections", "status"], env={env!r})
assert result.exit_code == 0, result.output
print(at_start, [m for m in {HEAVY!r} if m in sys.modules])
"""
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[] []"


def _migrated_sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    assert order_engine("migrate", cwd=tmp_path, DATABASE_URL=url).returncode == 0
    return url


def _closed_port() -> int:
    return free_port()  # nothing listens there once the probe socket is closed


@pytest.fixture
def unmigrated_postgres():
    url = create_database()
    yield url
    drop_database(url)


def one_line_error(completed: subprocess.CompletedProcess) -> str:
    output = (completed.stdout + completed.stderr).strip()
    assert completed.returncode != 0, output
    assert "Traceback" not in output and len(output.splitlines()) == 1, output
    assert output.startswith("order-engine: "), output
    return output


def test_a_read_only_command_in_an_empty_folder_creates_nothing_and_says_to_migrate(tmp_path):
    message = one_line_error(order_engine("projections", "status", cwd=tmp_path))
    assert "no database at ./order-engine.db" in message and "order-engine migrate" in message
    rebuild = one_line_error(order_engine("projections", "rebuild", cwd=tmp_path))
    assert "order-engine migrate" in rebuild
    assert list(tmp_path.iterdir()) == []


def test_migrating_a_database_that_does_not_exist(tmp_path):
    missing = TEST_DATABASE_URL.rsplit("/", 1)[0] + "/no_such_database"
    message = one_line_error(order_engine("migrate", cwd=tmp_path, DATABASE_URL=missing))
    assert "'no_such_database'" in message and "does not exist" in message
    assert "createdb no_such_database" in message and "order-engine migrate" in message


def required_settings(command: list[str]) -> dict[str, str]:
    """What a command needs besides the database and Redis: a worker swaps on the market at MARKET_URL
    (here nothing answers there; the database and Redis are checked first, and these tests are about them)."""
    return {"MARKET_URL": f"http://127.0.0.1:{_closed_port()}"} if command == ["worker"] else {}


@pytest.mark.parametrize("command", [["projections", "status"], ["migrate"], ["worker"], ["serve"]])
def test_postgres_down(command, tmp_path):
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/order_engine"
    completed = order_engine(
        *command, cwd=tmp_path, DATABASE_URL=url, REDIS_URL=TEST_REDIS_URL, **required_settings(command)
    )
    message = one_line_error(completed)
    assert "cannot reach PostgreSQL" in message and "DATABASE_URL" in message


@pytest.mark.parametrize("command", [["projections", "status"], ["api"], ["worker"], ["projector"]])
def test_a_database_that_was_never_migrated(command, unmigrated_postgres, tmp_path):
    completed = order_engine(
        *command,
        cwd=tmp_path,
        DATABASE_URL=unmigrated_postgres,
        REDIS_URL=TEST_REDIS_URL,
        **required_settings(command),
    )
    message = one_line_error(completed)
    assert "run `order-engine migrate`" in message


@pytest.mark.parametrize("role", ["serve", "api", "worker", "projector"])
def test_redis_down(role, postgres_url, tmp_path):
    redis_url = f"redis://127.0.0.1:{_closed_port()}/0"
    completed = order_engine(
        role, cwd=tmp_path, DATABASE_URL=postgres_url, REDIS_URL=redis_url, **required_settings([role])
    )
    message = one_line_error(completed)
    assert "cannot reach Redis" in message and "REDIS_URL" in message


@pytest.mark.parametrize("market_url", [None, "127.0.0.1:3001", "localhost:3001", "redis://127.0.0.1:3001"])
def test_a_worker_needs_the_market_s_http_address(market_url, postgres_url, tmp_path):
    """A separate worker swaps on the one shared market, never on one of its own: without MARKET_URL, or
    with one that is not http(s), it refuses to start, before connecting to anything."""
    market = {} if market_url is None else {"MARKET_URL": market_url}
    completed = order_engine(
        "worker", cwd=tmp_path, DATABASE_URL=postgres_url, REDIS_URL=TEST_REDIS_URL, **market
    )
    message = one_line_error(completed)
    assert "MARKET_URL" in message
    if market_url is None:
        assert "order-engine market" in message
    else:
        assert "http://" in message and repr(market_url) in message


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"DATABASE_URL": "mysql://root@127.0.0.1/orders"}, "DATABASE_URL"),
        ({"DATABASE_URL": "order-engine.db"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
        ({"MARKET_URL": "127.0.0.1:3001"}, "MARKET_URL"),
        ({"PORT": "three thousand"}, "PORT"),
        ({"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY"),
    ],
)
def test_a_malformed_setting(settings, named, tmp_path):
    message = one_line_error(order_engine("serve", cwd=tmp_path, **settings))
    assert named in message
    assert list(tmp_path.iterdir()) == []


def test_separate_roles_on_the_embedded_database(tmp_path):
    for role in ("api", "worker", "projector"):
        message = one_line_error(order_engine(role, cwd=tmp_path))
        assert "DATABASE_URL=postgresql" in message and "order-engine serve" in message


def test_a_port_in_use(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        message = one_line_error(order_engine("serve", "--port", str(port), cwd=tmp_path))
    assert f"port {port}" in message and "already in use" in message and "--port" in message
