"""The docs describe the product to its users: no note addressed to a person of the team, no change request."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADDRESSED = re.compile(r"for the lead|model change requested|not my file", re.IGNORECASE)


def test_no_doc_speaks_to_the_team():
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
             for n, line in enumerate(path.read_text().splitlines(), 1) if ADDRESSED.search(line)]
    assert not found, "\n".join(found)
