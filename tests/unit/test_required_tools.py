"""A program the tests need (Chromium, newman, wrk, pgbench) skips its tests where it is missing, with the
reason and how to install it, and fails them under REQUIRE_SERVICES=1, as CI sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services import require_tool

MISSING = "no-such-tool-order-engine"


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUIRE_SERVICES", raising=False)


@pytest.fixture
def ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUIRE_SERVICES", "1")


def test_a_missing_tool_on_path_skips_with_the_reason_and_the_way_to_install_it(local):
    with pytest.raises(pytest.skip.Exception, match=f"{MISSING} is missing.*apt-get install {MISSING}"):
        require_tool(MISSING, f"apt-get install {MISSING}")


def test_a_missing_tool_at_a_given_path_skips_naming_that_path(local, tmp_path: Path):
    absent = tmp_path / "bin" / "newman"
    with pytest.raises(pytest.skip.Exception, match=f"newman is missing \\({absent}\\).*npm ci"):
        require_tool("newman", "npm ci --prefix postman", absent)


def test_a_file_that_cannot_be_run_counts_as_missing(local, tmp_path: Path):
    not_executable = tmp_path / "chromium"
    not_executable.write_text("")
    with pytest.raises(pytest.skip.Exception, match="chromium is missing"):
        require_tool("chromium", "apt-get install chromium", not_executable)


@pytest.mark.parametrize("where", ["path", "given"])
def test_under_require_services_a_missing_tool_fails_the_test(ci, tmp_path: Path, where: str):
    path = tmp_path / MISSING if where == "given" else None
    with pytest.raises(pytest.fail.Exception, match=f"REQUIRE_SERVICES=1 but {MISSING} is missing"):
        require_tool(MISSING, "install it", path)


@pytest.mark.parametrize("mode", ["local", "ci"])
def test_a_present_tool_is_returned_whether_found_on_path_or_given(request, mode: str, tmp_path: Path):
    request.getfixturevalue(mode)
    found = require_tool("sh", "apt-get install dash")
    assert Path(found).name == "sh"
    program = tmp_path / "wrk"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    assert require_tool("wrk", "apt-get install wrk", program) == str(program)
