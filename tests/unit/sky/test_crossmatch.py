import numpy as np
import pytest

from evalcore.sky.crossmatch import AMBIGUOUS, MATCHED, NO_MATCH, NO_POSITION, crossmatch

ARCSEC = 1 / 3600


def test_nearest_within_radius_is_matched_with_its_separation():
    res = crossmatch([10.0], [20.0], [10.0 + 3 * ARCSEC / np.cos(np.radians(20)), 50.0], [20.0, 0.0])
    assert res[0].status == MATCHED and res[0].other == 0
    assert res[0].separation_arcsec == pytest.approx(3.0, abs=0.01)


def test_no_match_several_matches_and_missing_positions_have_reasons():
    res = crossmatch(
        [10.0, 30.0, np.nan],
        [0.0, 0.0, 0.0],
        [10.0, 10.0 + 2 * ARCSEC, 100.0],
        [0.0, 0.0, 0.0],
        radius_arcsec=5,
    )
    assert [m.status for m in res] == [AMBIGUOUS, NO_MATCH, NO_POSITION]
    assert res[0].candidates == [0, 1] and "2 catalogue rows" in res[0].reason


def test_clearly_nearest_candidate_wins_when_a_ratio_is_given():
    res = crossmatch([10.0], [0.0], [10.0 + 0.5 * ARCSEC, 10.0 + 8 * ARCSEC], [0.0, 0.0], 10, ambiguous_ratio=0.5)
    assert res[0].status == MATCHED and res[0].other == 0


def test_radius_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        crossmatch([0], [0], [0], [0], radius_arcsec=0)
