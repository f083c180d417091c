"""flare_process batches: one acquisition day per task, at most N sites, deterministic order."""

from datetime import date

import pytest

from flarewatch.process.batch import batch_site_days


def test_batches_group_by_day_and_cap_the_size():
    d1, d2 = date(2025, 6, 1), date(2025, 6, 2)
    pairs = [("c", d2), ("b", d1), ("a", d1), ("c", d1), ("a", d2), ("a", d1)]
    assert batch_site_days(pairs, 2) == [
        {"acquisition_date": "2025-06-01", "site_ids": ["a", "b"]},
        {"acquisition_date": "2025-06-01", "site_ids": ["c"]},
        {"acquisition_date": "2025-06-02", "site_ids": ["a", "c"]},
    ]
    assert batch_site_days(pairs, 1)[0] == {"acquisition_date": "2025-06-01", "site_ids": ["a"]}
    assert batch_site_days([], 6) == []
    with pytest.raises(ValueError, match="batch size"):
        batch_site_days(pairs, 0)
