"""No product module rests on uvicorn's private protocol classes (issue 13).

feed/raw_ws.py and web/http_protocol.py stand on websockets' public sans-I/O API and
on what uvicorn documents of its `http` and `ws` protocol classes; `uvicorn.protocols`
(its implementations, changed by patch releases) may not be imported by any product
module. The product's packages are the ones pyproject.toml installs, so a package
added or renamed there is scanned too.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = "uvicorn.protocols"


def product_packages() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project.get("tool", {}).get("setuptools", {})
    packages = setuptools.get("packages")
    if isinstance(packages, dict):  # [tool.setuptools.packages.find] include = [...]
        packages = packages.get("find", {}).get("include")
    if isinstance(packages, list):
        return sorted({name.split(".")[0] for name in packages})
    # Found by setuptools instead: every top-level package but the tests and the benchmark.
    return sorted(p.parent.name for p in ROOT.glob("*/__init__.py")
                  if p.parent.name not in ("tests", "bench"))


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
            # `from uvicorn import protocols`
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _forbidden(name: str) -> bool:
    return name == FORBIDDEN or name.startswith(FORBIDDEN + ".")


def test_the_scan_sees_every_form_of_import() -> None:
    source = ("import uvicorn.protocols.http.h11_impl\n"
              "from uvicorn.protocols.websockets import websockets_sansio_impl\n"
              "from uvicorn import protocols\n"
              "import uvicorn\nfrom uvicorn.config import Config\n")
    lines = {line for line, name in _imports(ast.parse(source)) if _forbidden(name)}
    assert lines == {1, 2, 3}


def test_no_product_module_imports_uvicorn_protocols() -> None:
    packages = product_packages()
    assert {"feed", "web"} <= set(packages), packages  # the two that wrap uvicorn's protocols
    offenders = []
    scanned = 0
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            scanned += 1
            for line, name in _imports(ast.parse(path.read_text(), str(path))):
                if _forbidden(name):
                    offenders.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert scanned > 20, scanned
    assert not offenders, "\n".join(offenders)
