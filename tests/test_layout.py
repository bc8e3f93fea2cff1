"""The shape of the house, enforced: which package may import which (docs/design.md, "Layers"), and that each
Docker image's contents (its Dockerfile's COPY lines) run every command of its package without the others.

Imports are read from the source (every ``import``/``from`` statement, also those inside functions: a lazy
import is still a dependency), so a rule breaks here before it breaks an image.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "engine", "trainer", "bench", "tests")

# module prefix -> the prefixes it may import (first match wins: most specific first). Third-party imports
# are not restricted here, except torch in the engine (below).
ALLOWED: list[tuple[str, tuple[str, ...]]] = [
    ("schemas", ("schemas",)),
    # engine, bottom to top: infrastructure and the de-identifier, the stages, what follows a note (worklist,
    # audit), the edges (source, sinks), then the service, its wiring and the commands
    ("engine.infra", ("schemas", "engine.infra")),
    ("engine.deid", ("schemas", "engine.deid")),
    ("engine.pipeline", ("schemas", "engine.infra", "engine.deid", "engine.pipeline")),
    ("engine.worklist", ("schemas", "engine.infra", "engine.pipeline", "engine.worklist")),
    ("engine.audit", ("schemas", "engine.infra", "engine.pipeline", "engine.worklist", "engine.audit")),
    ("engine.io", ("schemas", "engine.infra", "engine.pipeline", "engine.worklist", "engine.audit", "engine.io")),
    ("engine.observability", ("schemas", "engine.infra", "engine.pipeline", "engine.observability")),
    ("engine.service", ("schemas", "engine.infra", "engine.pipeline", "engine.io", "engine.observability", "engine.service")),
    ("engine.app", ("schemas", "engine")),
    # the coders' web application: on top of the worklist, audit and the stream's parse (re-reading note text)
    ("engine.workbench", ("schemas", "engine")),
    ("engine.cli", ("schemas", "engine")),
    ("engine.__main__", ("schemas",)),
    ("engine", ("schemas", "engine")),
    # the trainer uses the engine's torch-free de-identifier only (placeholders identical to serving)
    ("trainer", ("schemas", "engine.deid", "trainer")),
    ("bench", ("schemas", "engine", "trainer", "bench")),
    ("tests", PACKAGES),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute module names imported anywhere in the file (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                found.add(node.module)
    return found


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _python_files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def test_every_import_points_down():
    broken = []
    for package in PACKAGES:
        for path in _python_files(package):
            module = _module_name(path)
            allowed = next(rule for prefix, rule in ALLOWED if _within(module, prefix))
            for imported in sorted(_imports(path)):
                if imported.split(".")[0] not in PACKAGES:
                    continue
                if not any(_within(imported, a) for a in allowed):
                    broken.append(f"{module} imports {imported} (allowed: {', '.join(allowed)})")
    assert not broken, "imports against the layer rules (docs/design.md):\n" + "\n".join(broken)


def test_engine_source_never_imports_torch():
    offenders = [f"{_module_name(p)}: {m}" for p in _python_files("engine") for m in _imports(p) if m.split(".")[0] == "torch"]
    assert not offenders, offenders


def test_commands_live_in_cli_folders():
    """Every command module of every ``__main__`` table is in its package's cli/ folder."""
    for program in ("engine", "trainer", "bench"):
        table = (ROOT / program / "__main__.py").read_text(encoding="utf-8")
        modules = re.findall(r'Command\("[^"]+", "([^"]+)"', table)
        assert modules and all(m.startswith(f"{program}.cli.") for m in modules), (program, modules)
        on_disk = {f"{program}.cli.{p.stem}" for p in (ROOT / program / "cli").glob("*.py") if p.stem != "__init__"}
        assert on_disk == set(modules), f"{program}/cli/ holds {sorted(on_disk ^ set(modules))} not in (or missing from) the command table"


# ----- images ------------------------------------------------------------------------------------------

# Runs inside the copied image tree: blocks the packages the image does not ship, imports every module of
# the shipped packages, then shows --help of every command.
_PROBE = r"""
import importlib, json, pkgutil, sys
blocked, packages, program = json.loads(sys.argv[1])

class NotInImage:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not in this image)", name=name)
        return None

sys.meta_path.insert(0, NotInImage())
for package in packages:
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if ".data." not in info.name:  # data folders hold build scripts, not runtime code
            importlib.import_module(info.name)
from schemas.cli import main
for command in importlib.import_module(program + ".__main__").COMMANDS:
    try:
        main("python -m " + program, "", importlib.import_module(program + ".__main__").COMMANDS, [command.name, "--help"])
    except SystemExit as done:
        assert done.code == 0, (command.name, done.code)
    else:
        raise AssertionError(command.name + " --help did not exit")
assert not any(m.split(".")[0] in blocked for m in sys.modules), sorted(m for m in sys.modules if m.split(".")[0] in blocked)
print("ok")
"""


def _image_tree(dockerfile: Path, into: Path) -> list[str]:
    """Copy what the Dockerfile's ``COPY <dir>/ /app/<dir>/`` lines ship into ``into``; the top-level
    packages copied."""
    shipped = []
    for src, dst in re.findall(r"^COPY\s+(\S+/)\s+/app/(\S+/)\s*$", dockerfile.read_text(encoding="utf-8"), re.M):
        shutil.copytree(ROOT / src, into / dst, ignore=shutil.ignore_patterns("__pycache__"))
        shipped.append(dst.split("/")[0])
    return shipped


@pytest.mark.parametrize("image, program, blocked", [
    ("Dockerfile.engine", "engine", ["trainer", "bench", "tests", "torch"]),
    ("Dockerfile.trainer", "trainer", ["bench", "tests"]),
])
def test_image_contents_run_every_command(tmp_path, image, program, blocked):
    shipped = _image_tree(ROOT / "deploy" / image, tmp_path)
    assert program in shipped and "schemas" in shipped and not set(shipped) & set(blocked), shipped
    packages = [p for p in shipped if (tmp_path / p / "__init__.py").is_file()]
    # -P: no script directory on sys.path; PYTHONPATH: only the image tree (before the editable install's finder)
    done = subprocess.run([sys.executable, "-P", "-c", _PROBE, json.dumps([blocked, packages, program])], cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
