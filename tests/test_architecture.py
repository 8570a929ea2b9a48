"""The code keeps the structure docs/architecture.md describes.

The import direction between and inside the apps is import-linter's to check (its
contracts are in pyproject.toml); this module runs it and checks what it does not:
private names imported from another module, function-level imports without a
reason, and a map that names every module and only modules that exist.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("newsletter", "subscribers", "issues")
MAP = ROOT / "docs" / "architecture.md"


def app_modules() -> dict[str, Path]:
    """Return every app module by dotted name, migrations left out."""
    modules = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if "migrations" in rel.parts:
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_in(name: str, path: Path):
    """Yield (node, imported module, imported names, inside a def) per import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nested = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nested.update(id(inner) for inner in ast.walk(node) if inner is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [alias.name for alias in node.names]
            yield node, target, names, id(node) in nested
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, [], id(node) in nested


def test_imports_follow_the_documented_direction():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every boundary of the map has its contract: one dropped from pyproject.toml
    # would leave its layers unchecked while the run stayed green.
    assert "Contracts: 6 kept, 0 broken." in result.stdout, result.stdout


def test_no_module_imports_another_modules_private_name():
    offences = [
        f"{name}:{node.lineno} imports {target}.{imported}"
        for name, path in app_modules().items()
        for node, target, names, _ in imports_in(name, path)
        if target.split(".")[0] in APPS
        for imported in names
        if imported.startswith("_") and not imported.startswith("__")
    ]
    assert offences == []


def test_function_level_imports_say_why():
    offences = []
    for name, path in app_modules().items():
        lines = path.read_text().splitlines()
        for node, _, _, nested in imports_in(name, path):
            if not nested:
                continue
            line = lines[node.lineno - 1]
            # A comment on the line, or above the run of imports it belongs to.
            first = node.lineno - 1
            while first > 0 and lines[first - 1].strip().startswith(
                ("from ", "import ")
            ):
                first -= 1
            above = lines[first - 1].strip() if first else ""
            if "#" not in line and not above.startswith("#"):
                offences.append(f"{name}:{node.lineno}: {line.strip()}")
    assert offences == []


def test_every_module_the_map_names_exists():
    named = re.findall(
        r"`((?:newsletter|subscribers|issues)/[\w/.<>-]*\.py)`", MAP.read_text()
    )
    assert named, "the map names no module"
    missing = sorted({path for path in named if not (ROOT / path).exists()})
    assert missing == []


def test_the_map_names_every_app_module():
    page = MAP.read_text()
    unnamed = [
        str(path.relative_to(ROOT))
        for path in app_modules().values()
        if path.stat().st_size and f"`{path.relative_to(ROOT)}`" not in page
    ]
    assert unnamed == []
