"""The summary CSV's reader lives with the Django-free statistics: a notebook reads it without settings."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
NOTEBOOK = """
import io, sys
from evalcore.study.stats import read_summary_csv
tables = read_summary_csv(io.StringIO(
    "table,source,share,rater,fails_rule\\n"
    "quality_summary,model,0.894,,\\n"
    "quality_summary,volunteers,0.757,,\\n"
    "attention,,,R001,false\\n"))
assert list(tables) == ["quality_summary", "attention"], list(tables)
assert list(tables["quality_summary"].columns) == ["source", "share"]
assert tables["quality_summary"]["share"].tolist() == [0.894, 0.757]
assert list(tables["attention"].columns) == ["rater", "fails_rule"]
assert tables["attention"]["fails_rule"].tolist() == [False]
loaded = sorted(m for m in sys.modules if m == "django" or m.startswith(("django.", "ratings", "segmentation")))
assert not loaded, loaded
print("ok")
"""


def test_the_summary_reader_needs_no_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", NOTEBOOK], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
