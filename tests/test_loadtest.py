"""The load test runs end to end against the real app: no errors below capacity, busy answers above."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


def test_loadtest_short_run(tiny_mlm_dir: Path, tiny_clf_dir: Path) -> None:
    import loadtest

    res = loadtest.run(seconds=3, concurrency=1, queue_size=2, mlm=str(tiny_mlm_dir), sentiment=str(tiny_clf_dir))
    assert res["below_capacity"]["errors"] == 0 and res["below_capacity"]["ok"] > 0
    assert res["over_capacity"]["errors"] == 0, res["over_capacity"]["error_examples"]
    assert res["over_capacity"]["ok"] > 0
    assert res["serves_after"] is True
