"""The import rules between the layers, as import-linter contracts in ``pyproject.toml``.

``aisystem/__init__.py`` names the layers. The contracts say: the core of ``aisystem`` does not
import the pipeline or the bridge; the pipeline and the bridge use only that core; nothing
imports the bridge; the modules of a package import each other without cycles. grimp, under
import-linter, reads every import statement, including those inside functions, so a lazy
import cannot slip past.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "pyproject.toml"
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))  # import-linter's command


def lint_imports(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(config), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_layer_contract_is_kept() -> None:
    contracts = tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["contracts"]
    result = lint_imports(CONFIG)

    assert result.returncode == 0, result.stdout + result.stderr
    for contract in contracts:
        assert f"{contract['name']} KEPT" in result.stdout
    assert len(contracts) >= 4


def test_a_broken_rule_is_reported(tmp_path: Path) -> None:
    """The checker can fail: a rule the code breaks on purpose is reported as broken."""
    config = tmp_path / "layers.toml"
    config.write_text(
        "[tool.importlinter]\n"
        'root_packages = ["aisystem", "pipeline"]\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "the pipeline without models"\n'
        'type = "forbidden"\n'
        'source_modules = ["pipeline"]\n'
        'forbidden_modules = ["aisystem.models"]\n'
    )

    result = lint_imports(config)

    assert result.returncode != 0
    assert "the pipeline without models BROKEN" in result.stdout


def test_imports_inside_functions_are_in_the_graph() -> None:
    """``aisystem.tasks`` imports ``pipeline.deferred`` only inside a function."""
    graph = grimp.build_graph("aisystem", "pipeline", cache_dir=None)

    assert graph.direct_import_exists(importer="aisystem.tasks", imported="pipeline.deferred")
