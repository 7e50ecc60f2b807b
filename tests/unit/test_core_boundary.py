"""The core imports neither Django nor the apps, checked by importing every module of it in a fresh
interpreter (import-linter checks the import statements; this checks what really gets loaded)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def core_modules() -> list[str]:
    core = ROOT / "evalcore"
    names = []
    for path in sorted(core.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_core_module_imports_without_django_or_the_apps():
    modules = core_modules()
    assert "evalcore.unet.model" in modules and "evalcore.study.stats" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'segmentation', 'ratings', 'evalsite', 'rq', 'django_rq'))\n"
        "print('\\n'.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""
