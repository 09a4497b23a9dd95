"""The layout's rules, read from the source: no import circles, services apart, tests and bench off the CLI."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "gongdi", "services")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every project module a file imports, at module level or inside functions."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def graph(roots: tuple[str, ...]) -> dict[str, set[str]]:
    files = {module_name(p): p for r in roots for p in (ROOT / r).rglob("*.py")}
    return {name: {i for i in imports(path) if i in files and i != name} for name, path in files.items()}


def test_no_import_circles():
    edges = graph(PACKAGES)
    # A package's __init__ is imported on the way to any of its modules; count only explicit edges.
    done: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> None:
        if node in stack:
            raise AssertionError("import circle: " + " → ".join([*stack[stack.index(node):], node]))
        if node in done:
            return
        stack.append(node)
        for nxt in sorted(edges[node]):
            visit(nxt)
        stack.pop()
        done.add(node)

    for node in sorted(edges):
        visit(node)


def test_a_service_imports_no_other_service():
    for name, deps in graph(PACKAGES).items():
        if name.startswith("services."):
            own = name.split(".")[1]
            others = {d for d in deps if d.startswith("services.") and d.split(".")[1] != own}
            assert not others, f"{name} imports {sorted(others)}"


def test_the_kit_and_contracts_import_no_service():
    for name, deps in graph(PACKAGES).items():
        if name.startswith(("contracts", "gongdi.store", "gongdi.bus", "gongdi.service")):
            assert not {d for d in deps if d.startswith("services")}, name


def test_tests_and_bench_import_neither_the_cli_nor_each_other():
    # tests/fixtures holds the recipe that ran release 0.1 itself, with that release's own modules.
    sources = [p for p in (ROOT / "tests").rglob("*.py") if "fixtures" not in p.parts]
    for path in [*sources, *(ROOT / "bench").rglob("*.py")]:
        found = imports(path)
        assert not {i for i in found if i.startswith("gongdi.cli")}, f"{path} imports the CLI"
        tests = {i for i in found if i.startswith("tests.") and i.rsplit(".", 1)[-1].startswith("test_")}
        assert not tests, f"{path} imports test modules {sorted(tests)}"
        if path.is_relative_to(ROOT / "bench"):
            assert not {i for i in found if i.startswith("tests")}, f"{path} imports the tests"
        else:
            assert not {i for i in found if i.split(".")[0] == "bench"}, f"{path} imports the benchmarks"


def test_the_store_depends_on_nothing_above_it():
    for name, deps in graph(PACKAGES).items():
        if name.startswith("gongdi.store"):
            above = {d for d in deps if d.startswith(("gongdi.service", "gongdi.bus", "gongdi.ops", "gongdi.cli"))}
            assert not above, f"{name} imports {sorted(above)}"


def test_the_platform_reads_the_citys_day_never_the_hosts():
    """A server kept on UTC is a day behind the city from 16:00 to midnight: a meeting recorded on the city's day was
    not counted as held until the host's midnight (the views took `date.today()`)."""
    found = []
    for path in sorted(p for top in ("contracts", "services", "gongdi", "tests", "bench")
                       for p in (ROOT / top).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                    "today", "now") and isinstance(node.func.value, ast.Attribute) \
                    and node.func.value.attr in ("date", "datetime") and not node.args and not node.keywords:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, f"the host's day or time, not the city's (contracts.timeline.city_today): {found}"
