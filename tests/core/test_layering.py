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
