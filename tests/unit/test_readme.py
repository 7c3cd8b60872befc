"""README.md refers only to what the repository holds, and its Tests section names every program the suite
needs besides Python packages."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()

LINK = re.compile(r"\]\(([^)\s]+)\)")  # a Markdown link's target
CODE = re.compile(r"`([^`\n]+)`")  # an inline code span
# A path as README writes one: words joined by `/`, ending in a file name with an extension or in `/`.
PATH = re.compile(r"^(\.{0,2}/)?[\w.-]+(/[\w.-]+)*(/|\.[A-Za-z]\w*)$")
# What a file name alone (no `/`) ends with; other dotted names are modules and loggers (`engine.websocket`).
FILE_SUFFIXES = {"py", "md", "json", "jsonl", "toml", "yml", "yaml", "lock", "png", "txt", "html", "js"}
# What README names that a run creates (ignored by git), not something the repository holds.
CREATED_BY_RUNS = {"./order-engine.db"}
REQUIRED_TOOL = re.compile(r"require_tool\(\s*\"([\w-]+)\"")


def referenced_paths(text: str) -> set[str]:
    candidates = set(LINK.findall(text)) | set(CODE.findall(text))
    return {
        c
        for c in candidates
        if "://" not in c
        and not c.startswith("/")
        and PATH.match(c)
        and ("/" in c or c.rsplit(".", 1)[-1] in FILE_SUFFIXES or c.startswith("."))
        and c not in CREATED_BY_RUNS
    }


def exists_in_repository(reference: str) -> bool:
    """A path from the root (`docs/examples/`), or a name README uses inside a context it gives
    (`test_faults.py` after `tests/integration/...`, `unit/` in the layout of `tests/`)."""
    target = (ROOT / reference).resolve()
    if target.is_relative_to(ROOT) and target.exists():
        return True
    if "/" in reference.rstrip("/") or reference.startswith("."):
        return False
    name = reference.rstrip("/")
    return any(found.name == name for found in ROOT.glob(f"[!.]*/**/{name}"))


def test_every_path_readme_names_is_in_the_repository():
    references = referenced_paths(README)
    assert {"docs/examples/", "postman/collection.json", "docs/monitoring-page.png"} <= {
        r.rstrip("/") + ("/" if r.endswith("/") else "") for r in references
    }
    missing = sorted(r for r in references if not exists_in_repository(r))
    assert not missing, f"README refers to what the repository does not hold: {missing}"


def test_the_path_check_catches_a_reference_outside_the_repository():
    assert referenced_paths("see `../shared/examples/` and [a](docs/nothing-here.png)") == {
        "../shared/examples/",
        "docs/nothing-here.png",
    }
    assert not exists_in_repository("../shared/examples/")
    assert not exists_in_repository("docs/nothing-here.png")
    assert not exists_in_repository("no_such_test.py")
    assert referenced_paths("logged by `engine.websocket`, see `.env.example` and `README.md`") == {
        ".env.example",
        "README.md",
    }
    assert exists_in_repository("test_faults.py") and exists_in_repository("unit/")


def declared_tools(source: str) -> set[str]:
    """The keys of a module's `TOOLS = {"wrk": "how to install it"}` (how a benchmark part declares them),
    read without importing the part."""
    return {
        key.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "TOOLS" for t in node.targets)
        for key in getattr(node.value, "keys", [])
        if isinstance(key, ast.Constant)
    }


def required_tools() -> set[str]:
    """Every program a test asks for with `require_tool`, and every one a benchmark part declares."""
    in_tests = {
        tool
        for source in (ROOT / "tests").rglob("*.py")
        for tool in REQUIRED_TOOL.findall(source.read_text())
    }
    in_bench = {
        tool for source in (ROOT / "bench").glob("*.py") for tool in declared_tools(source.read_text())
    }
    return in_tests | in_bench


def test_the_tests_section_names_every_program_the_suite_needs():
    section = README.split("\n## Tests\n", 1)[1].split("\n## ", 1)[0]
    tools = required_tools()
    assert {"chromium", "newman", "wrk", "pgbench"} <= tools
    unnamed = sorted(tool for tool in tools if tool.lower() not in section.lower())
    assert not unnamed, f"README's Tests section does not name {unnamed}"
    assert "REQUIRE_SERVICES=1" in section and "`.ci/run`" in section
