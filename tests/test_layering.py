"""The layering rules of DESIGN §2 and STYLE §1, checked rather than hoped for."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Anything that does I/O, reads a clock, draws randomness or schedules tasks.
FORBIDDEN = {
    "trio",
    "asyncio",
    "anyio",
    "socket",
    "selectors",
    "select",
    "ssl",
    "os",
    "io",
    "pathlib",
    "time",
    "datetime",
    "random",
    "secrets",
    "logging",
    "threading",
    "subprocess",
    "sqlite3",
    "shutil",
    "tempfile",
    "signal",
    "node",
    "simulations",
    "nacl.utils",
}
PURE_TREES = [ROOT / "protocol", ROOT / "node" / "trust"]
# protocol/ is stricter (STYLE §1): the reference an independent implementer
# reads imports only these pure standard-library modules, nacl, msgpack (in
# codec.py) and itself. Anything else (numpy, importlib, a new dependency) fails
# until it is added here on purpose; node/trust may use numpy and scipy.
PROTOCOL_ALLOWED = {
    "__future__",
    "abc",
    "base64",
    "binascii",
    "bisect",
    "collections",
    "dataclasses",
    "enum",
    "functools",
    "hashlib",
    "heapq",
    "hmac",
    "ipaddress",  # pure parsing of address literals (protocol.punch, SPEC §15.4)
    "itertools",
    "math",
    "operator",
    "re",
    "string",
    "struct",
    "types",
    "typing",
    "unicodedata",
    "nacl",
    "msgpack",
    "protocol",
}


def _pure_modules() -> list[Path]:
    return sorted(p for tree in PURE_TREES if tree.exists() for p in tree.rglob("*.py"))


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _is_forbidden(name: str) -> bool:
    if name == "node.trust" or name.startswith("node.trust."):
        return False  # node/trust is itself pure: its modules may import each other
    parts = name.split(".")
    return any(".".join(parts[:i]) in FORBIDDEN for i in range(1, len(parts) + 1))


def _is_allowed_in_protocol(name: str) -> bool:
    return name.split(".")[0] in PROTOCOL_ALLOWED and not _is_forbidden(name)


def _dynamic_imports(path: Path) -> list[str]:
    """Calls that import by name at run time, which the allowlist could not see."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name | ast.Attribute)
        and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
        in {"__import__", "import_module"}
    ]


def _protocol_modules() -> list[Path]:
    return sorted((ROOT / "protocol").rglob("*.py"))


def test_there_are_pure_modules_to_check() -> None:
    assert len(_pure_modules()) >= 5


@pytest.mark.parametrize("path", _pure_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_imports_nothing_impure(path: Path) -> None:
    bad = [name for name in _imports(path) if _is_forbidden(name)]
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", _pure_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_codec_imports_msgpack(path: Path) -> None:
    if path == ROOT / "protocol" / "codec.py":
        return
    assert not any(n == "msgpack" or n.startswith("msgpack.") for n in _imports(path))


@pytest.mark.parametrize("path", _protocol_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_protocol_imports_only_pure_stdlib_nacl_and_msgpack(path: Path) -> None:
    bad = [name for name in _imports(path) if not _is_allowed_in_protocol(name)]
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"
    assert _dynamic_imports(path) == []


def test_protocol_checker_refuses_numpy_and_anything_unlisted(tmp_path: Path) -> None:
    # Regression: the denylist alone let protocol/sketch.py import numpy.
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import hashlib\nimport numpy as np\nfrom numpy.typing import NDArray\n"
        "import nacl.bindings\nimport nacl.utils\nimport importlib\nimport time\n"
        "from protocol.errors import Reason\nfrom collections.abc import Sequence\n"
        "x = __import__('numpy')\ny = importlib.import_module('scipy')\n"
    )
    assert [n for n in _imports(sample) if not _is_allowed_in_protocol(n)] == [
        "numpy",
        "numpy.typing",
        "numpy.typing.NDArray",
        "nacl.utils",
        "importlib",
        "time",
    ]
    assert len(_dynamic_imports(sample)) == 2


def test_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import time\nfrom trio import sleep\nfrom os.path import join\n")
    assert [n for n in _imports(sample) if _is_forbidden(n)] == [
        "time",
        "trio",
        "trio.sleep",
        "os.path",
        "os.path.join",
    ]


# -- the rooms of node/ (issue 23): arrows run down, never back up ------------------------

NODE = ROOT / "node"
# The faces: what a person or an app talks to. `demo` is one (it runs the API and
# prints with the CLI's rendering), and so is `web` (the browser app on the API);
# nothing else may import them.
FACES = {"api", "cli", "demo", "web"}
# Simulations build members with `node.service` (the assembly) on `node.net`, and
# may read `node.trust` and `node.store`; gossip is reached only through a Node.
SIMULATION_ROOMS = ("node.service", "node.net", "node.trust", "node.store", "node.errors")
# simulations/convergence.py measures the gossip layer alone (GossipNode sessions on
# fixed links, no peer manager, no trust), as benchmarks.gossip does: it is a study
# of that room, not a community of members.
GOSSIP_STUDIES = {ROOT / "simulations" / "convergence.py"}


def _modules(*parts: str) -> list[Path]:
    return sorted(ROOT.joinpath(*parts).rglob("*.py"))


def _room_of(path: Path) -> str:
    relative = path.relative_to(NODE)
    return relative.parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", _modules("protocol"), ids=lambda p: str(p.relative_to(ROOT)))
def test_protocol_imports_no_node(path: Path) -> None:
    bad = [n for n in _imports(path) if n == "node" or n.startswith("node.")]
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", _modules("node", "trust"), ids=lambda p: str(p.relative_to(ROOT)))
def test_trust_imports_no_store_or_gossip(path: Path) -> None:
    below = ("node.store", "node.gossip", "node.net", "node.service", "node.home")
    bad = [n for n in _imports(path) if any(n == b or n.startswith(b + ".") for b in below)]
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


def _below_the_faces() -> list[Path]:
    return [p for p in _modules("node") if _room_of(p) not in FACES]


def test_there_are_rooms_below_the_faces() -> None:
    rooms = {_room_of(p) for p in _below_the_faces()}
    assert {"service", "trust", "names", "store", "gossip", "net", "home"} <= rooms


@pytest.mark.parametrize("path", _below_the_faces(), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_below_the_faces_imports_them(path: Path) -> None:
    faces = tuple(f"node.{face}" for face in FACES)
    bad = [n for n in _imports(path) if any(n == f or n.startswith(f + ".") for f in faces)]
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


def _simulation_modules() -> list[Path]:
    return [p for p in _modules("simulations") if p not in GOSSIP_STUDIES]


def _is_simulation_import_allowed(name: str) -> bool:
    if name != "node" and not name.startswith("node."):
        return True
    return any(name == room or name.startswith(room + ".") for room in SIMULATION_ROOMS)


@pytest.mark.parametrize("path", _simulation_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_simulations_build_members_through_the_service(path: Path) -> None:
    bad = [n for n in _imports(path) if not _is_simulation_import_allowed(n)]
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


def test_the_world_is_built_by_the_assembly() -> None:
    world = ROOT / "simulations" / "world.py"
    names = _imports(world)
    assert "node.service.assemble.build_node" in names
    assert not [n for n in names if n.startswith(("node.gossip", "node.net.transport"))]


def test_simulation_checker_refuses_gossip_and_home(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from node.gossip.gossip_node import GossipNode\nfrom node.home.config import X\n"
        "from node.service.assemble import build_node\nfrom node.net.simnet import SimNetwork\n"
        "import numpy\n"
    )
    assert [n for n in _imports(sample) if not _is_simulation_import_allowed(n)] == [
        "node.gossip.gossip_node",
        "node.gossip.gossip_node.GossipNode",
        "node.home.config",
        "node.home.config.X",
    ]
