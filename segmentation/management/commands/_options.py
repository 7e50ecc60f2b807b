"""Options shared by several management commands (a module starting with "_" is not a command)."""
from evalcore.sky.splits import SPLITS
from segmentation.selectors.galaxies import SYNTHETIC_CHOICES, GalaxySelection


def add_split_argument(parser) -> None:
    parser.add_argument("--split", choices=SPLITS,
                        help="only galaxies of this split: the sky-cell split training uses and records in each "
                             "model version's manifest (evalcore/sky/splits.py)")


def add_selection_arguments(parser, *, split: bool = True) -> None:
    """The one galaxy selection on the command line: --synthetic, --names and (with ``split``) --split."""
    parser.add_argument("--synthetic", choices=SYNTHETIC_CHOICES, default="any",
                        help="synthetic galaxies only, excluded, or any (default)")
    parser.add_argument("--names", nargs="+", metavar="NAME", help="only these galaxies (by name)")
    if split:
        add_split_argument(parser)


def selection_from_options(options: dict) -> GalaxySelection:
    return GalaxySelection(synthetic=options.get("synthetic") or "any", names=tuple(options.get("names") or ()),
                           split=options.get("split"))
