"""The engine stays sans-IO: it never imports simpy, and only the real driver imports I/O clients."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IO_CLIENTS = {"redis", "pymysql", "aiomysql", "asyncmy", "mysql", "socket", "asyncio", "psycopg"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def engine_files():
    return [p for p in (ROOT / "engine").rglob("*.py")]


def test_engine_never_imports_simpy():
    offenders = {str(p.relative_to(ROOT)) for p in engine_files() if any(m.split(".")[0] == "simpy" for m in imports(p))}
    assert offenders == set()


def test_only_the_real_driver_imports_io_clients():
    offenders = set()
    for path in engine_files():
        if "real" in path.relative_to(ROOT / "engine").parts:
            continue
        for module in imports(path):
            if module == "redis.crc":  # redis-py's pure slot function is allowed anywhere
                continue
            if module.split(".")[0] in IO_CLIENTS:
                offenders.add(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == set()


def test_the_reference_interpreter_is_pure():
    """engine.testing answers every op in memory: no simpy, no I/O client, no real driver."""
    found = {m for p in (ROOT / "engine" / "testing").rglob("*.py") for m in imports(p)}
    assert found, "engine/testing has no imports: the check looked in the wrong place"
    assert {m for m in found if m.split(".")[0] in {"simpy", *IO_CLIENTS} and m != "redis.crc"} == set()
    assert {m for m in found if m.startswith(("engine.real", "sim"))} == set()


def test_the_check_itself_sees_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import simpy\nfrom redis import Redis\n")
    assert {"simpy", "redis"} <= imports(probe)


# ---------------------------------------------------------------- import cycles
def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith("TYPE_CHECKING")


def runtime_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Modules of ``known`` that ``path`` (module ``name``) imports when it runs, at module level or in a
    function. Imports under ``if TYPE_CHECKING:`` never run, so they are left out."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    stack: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while stack:
        node = stack.pop()
        if _type_checking_only(node):
            assert isinstance(node, ast.If)
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names}
    return found & known - {name}


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    files = {module_name(p, root): p for package in packages for p in (root / package).rglob("*.py")}
    return {name: runtime_imports(path, name, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycles_in_engine_and_sim():
    graph = import_graph(ROOT, ("engine", "sim"))
    assert len(graph) > 50 and graph["sim.cli.main"]  # the graph is really built
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_sees_function_level_and_relative_imports(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def late():\n    from .c import thing\n")
    (package / "c.py").write_text("import typing\nif typing.TYPE_CHECKING:\n    import pkg.b\nimport pkg.a\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.a"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
