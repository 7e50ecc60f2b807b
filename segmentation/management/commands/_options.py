"""Options shared by several management commands (a module starting with "_" is not a command)."""
from evalcore.sky.splits import SPLITS


def add_split_argument(parser) -> None:
    parser.add_argument("--split", choices=SPLITS,
                        help="only galaxies of this split: the sky-cell split training uses and records in each "
                             "model version's manifest (evalcore/sky/splits.py)")
