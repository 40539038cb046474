"""The shape of the code: dependencies point one way, and the core does no IO.

Every module's imports (top-level and inside functions alike) are read from its
source, so a lazy import that climbs the layers is caught as well as an eager one.
Imports under ``if TYPE_CHECKING:`` are for annotations only (an exception
names the ``Result`` it carries) and do not count.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "streamfold"

# Layers from the bottom: a module may import modules of its own layer or below.
# ``cli`` sits on top; the package's ``__init__`` is the facade over everything
# (it loads the client lazily), and the three old paths only re-export adapters.
LAYERS: dict[str, int] = {
    "errors": 0,
    "partial_json": 1,
    "events": 2,
    "structured": 2,
    "result": 3,
    "sse": 4,
    "framing": 4,
    "eventstream": 4,
    "fold": 5,
    "dialects": 6,
    "parser": 7,
    "encode": 7,
    "samples": 7,
    "adapters": 8,
    "client": 9,
    "server": 9,
    "pytest_plugin": 9,
    "cli": 10,
    "__main__": 10,
    "__init__": 11,
}
CORE = {name for name, layer in LAYERS.items() if layer <= LAYERS["parser"]}
# Third-party and standard modules that mean IO, an event loop, a terminal or
# telemetry (OpenTelemetry is an adapter's optional extra).
IO_MODULES = {
    "httpx",
    "httpx2",
    "httpcore",
    "h11",
    "anyio",
    "asyncio",
    "socket",
    "ssl",
    "threading",
    "starlette",
    "uvicorn",
    "rich",
    "subprocess",
    "opentelemetry",
}


def _unit(module: Path) -> str:
    """The layer name of a module: its first path component under the package."""
    parts = module.relative_to(SRC).with_suffix("").parts
    return parts[0]


def _imports(module: Path) -> set[str]:
    """The modules ``module`` imports, as absolute dotted names."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    package = ["streamfold", *module.relative_to(SRC).with_suffix("").parts[:-1]]
    if module.name == "__init__.py":
        package = ["streamfold", *module.relative_to(SRC).parts[:-1]]
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
                found.add(name)
                # ``from . import x``: x is a module when a file says so.
                for alias in node.names:
                    path = SRC.joinpath(*f"{name}.{alias.name}".split(".")[1:])
                    if path.with_suffix(".py").exists() or path.is_dir():
                        found.add(f"{name}.{alias.name}")
            elif node.module:
                found.add(node.module)
    return found


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    nodes: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            pending.extend(node.orelse)
            continue
        nodes.append(node)
        pending.extend(ast.iter_child_nodes(node))
    return nodes


MODULES = sorted(p for p in SRC.rglob("*.py"))


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_dependencies_point_down(module: Path) -> None:
    unit = _unit(module)
    assert unit in LAYERS, f"{unit} has no layer: add it to LAYERS"
    for name in _imports(module):
        parts = name.split(".")
        if parts[0] != "streamfold" or len(parts) == 1:
            continue
        target = parts[1]
        if target == unit:
            continue
        assert LAYERS[target] <= LAYERS[unit], (
            f"{module.relative_to(SRC)} (layer {unit}) imports {name}, a layer above it"
        )


@pytest.mark.parametrize(
    "module",
    [p for p in MODULES if _unit(p) in CORE],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_the_core_imports_no_io(module: Path) -> None:
    io = {name for name in _imports(module) if name.split(".")[0] in IO_MODULES}
    assert not io, f"{module.relative_to(SRC)} is core but imports {sorted(io)}"


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    # The rule is only as good as the import reader: it must resolve relative
    # imports, imports inside functions and ``from . import x``.
    module = SRC / "fold.py"
    names = _imports(module)
    assert "streamfold.events" in names and "streamfold.partial_json" in names
    parser_imports = _imports(SRC / "parser.py")
    assert "streamfold.dialects" in parser_imports
    cli_imports = _imports(SRC / "cli" / "live.py")
    assert any(n.startswith("streamfold.adapters") for n in cli_imports)  # lazy, in functions


def _private_names(module: Path) -> set[str]:
    """The private attributes a module's classes define (slots and ``self._x =``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
        ):
            names.update(
                e.value
                for e in ast.walk(node.value)
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            )
    return {n for n in names if isinstance(n, str) and n.startswith("_") and n[1:2] != "_"}


def _foreign_private_reads(module: Path, private: set[str]) -> list[str]:
    """Reads of one of ``private`` on anything but ``self``."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    return [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in private
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]


@pytest.mark.parametrize(
    "module",
    [p for p in MODULES if _unit(p) in ("dialects", "parser", "encode")],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_nothing_reaches_past_the_accumulators_view(module: Path) -> None:
    # The accumulator is the one store of streamed text and arguments; the rest
    # reads it through its documented read-only view (fold.PartView,
    # ToolCallView, ChoiceView: mypy holds them to it), never its private state.
    private = _private_names(SRC / "fold.py") - _private_names(module)
    reaches = _foreign_private_reads(module, private)
    reaches += [
        r
        for r in _foreign_private_reads(module, _private_names(SRC / "fold.py"))
        if ".acc." in r or " acc." in r or ": acc." in r
    ]
    assert not reaches, f"{module.relative_to(SRC)} reaches into the accumulator: {reaches}"


def test_the_reach_checker_sees_a_reach() -> None:
    private = _private_names(SRC / "fold.py")
    assert {"_pieces", "_choices", "_open", "_order"} <= private
    probe = SRC / "fold.py"  # fold itself reads its parts' privates: the checker sees them
    assert _foreign_private_reads(probe, private)


_MISUSES = {
    "part.text = 'changed'": "read-only",
    "print(part._pieces)": "has no attribute",
    "call.arguments = 'x'": "read-only",
    "acc.choice(0).tool_calls.append(call)": "has no attribute",
    "acc.choices[1] = acc.choice(0)": "Unsupported target",
    "acc.started = True": "read-only",
}


def test_mypy_rejects_a_write_through_the_view_or_a_reach_past_it(tmp_path: Path) -> None:
    # The view is enforced in the types: what a push method or a look-up
    # returns is a read-only Protocol, the accumulator's own state is private.
    api = pytest.importorskip("mypy.api")
    lines = [
        "from streamfold.fold import Accumulator",
        "def misuse(acc: Accumulator) -> None:",
        "    part = acc.text(0, 'hi')",
        "    call = acc.tool_call(0, 'k', arguments='{}')",
        *(f"    {line}" for line in _MISUSES),
    ]
    probe = tmp_path / "probe.py"
    probe.write_text("\n".join(lines) + "\n", encoding="utf-8")
    limit = sys.getrecursionlimit()
    try:
        report, _, _ = api.run(["--strict", "--no-error-summary", str(probe)])
    finally:
        # mypy raises the interpreter's recursion limit for itself: later tests
        # (a too deep JSON value is a parse error) rely on the default one.
        sys.setrecursionlimit(limit)
    for number, (line, words) in enumerate(_MISUSES.items(), start=5):
        found = [r for r in report.splitlines() if f"probe.py:{number}:" in r]
        assert found and words in found[0], (line, report)
