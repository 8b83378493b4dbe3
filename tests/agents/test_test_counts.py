"""The bot reads the counts of the runners teams use, not only pytest's."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agents.testing import parse_counts, run_tests

PYTEST = "..F.    [100%]\n=== 3 passed, 1 failed in 0.12s ==="
JEST = textwrap.dedent(
    """\
    FAIL src/pricing.test.js
      ✕ 10% off 200 is 180 (3 ms)
    Tests:       1 failed, 3 passed, 4 total
    Snapshots:   0 total
    """
)
CARGO = textwrap.dedent(
    """\
    running 3 tests
    test tests::discount ... FAILED
    test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out

    running 2 tests
    test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out
    """
)
UNITTEST = textwrap.dedent(
    """\
    ..FE
    ======================================================================
    FAIL: test_discount (test_pricing.PricingTest.test_discount)
    ----------------------------------------------------------------------
    Ran 4 tests in 0.003s

    FAILED (failures=1, errors=1)
    """
)
UNITTEST_OK = "....\n------\nRan 4 tests in 0.001s\n\nOK\n"
GO = textwrap.dedent(
    """\
    === RUN   TestTotal
    --- PASS: TestTotal (0.00s)
    === RUN   TestDiscount
        pricing_test.go:12: got 190, want 180
    --- FAIL: TestDiscount (0.00s)
    FAIL
    FAIL\texample.com/shop\t0.002s
    """
)
MOCHA = "  pricing\n    ✓ totals\n    1) discounts\n\n  3 passing (8ms)\n  1 failing\n"
RSPEC = "..F.\n\nFinished in 0.01 seconds\n4 examples, 1 failure\n"


@pytest.mark.parametrize(
    ("output", "counts"),
    [
        (PYTEST, (3, 1, 0)),
        (JEST, (3, 1, 0)),
        (CARGO, (4, 1, 0)),
        (UNITTEST, (2, 1, 1)),
        (UNITTEST_OK, (4, 0, 0)),
        (GO, (1, 1, 0)),
        (MOCHA, (3, 1, 0)),
        (RSPEC, (3, 1, 0)),
        ("make: *** No rule to make target 'test'.  Stop.", (0, 0, 0)),
    ],
    ids=["pytest", "jest", "cargo", "unittest", "unittest-ok", "go", "mocha", "rspec", "none"],
)
def test_counts_from_each_runner(output: str, counts: tuple[int, int, int]) -> None:
    """Each runner's summary gives the passed / failed / error counts people would read."""
    assert parse_counts(output) == counts


def test_a_unittest_suite_is_red_then_green(tmp_path: Path) -> None:
    """A repo tested with `python -m unittest` can show RED and then GREEN to the bot."""
    (tmp_path / "pricing.py").write_text(
        "def apply_discount(price, percent):\n    return price - percent\n"
    )
    (tmp_path / "test_pricing.py").write_text(
        "import unittest\nfrom pricing import apply_discount\n\n"
        "class PricingTest(unittest.TestCase):\n"
        "    def test_zero(self):\n        self.assertEqual(apply_discount(200, 0), 200)\n\n"
        "    def test_ten_percent(self):\n        self.assertEqual(apply_discount(200, 10), 180)\n"
    )
    red = run_tests("python3 -m unittest -v", tmp_path, timeout=60)
    assert (red.passed, red.failed, red.red, red.green) == (1, 1, True, False)

    (tmp_path / "pricing.py").write_text(
        "def apply_discount(price, percent):\n    return price * (100 - percent) / 100\n"
    )
    green = run_tests("python3 -m unittest -v", tmp_path, timeout=60)
    assert (green.passed, green.failed, green.green) == (2, 0, True)
    assert green.counts() == "2 passed, 0 failed"


def test_a_run_that_ran_no_tests_is_not_green(tmp_path: Path) -> None:
    """A suite that exits 0 having collected nothing is no evidence: neither GREEN nor RED."""
    (tmp_path / "conftest.py").write_text(
        'collect_ignore_glob = ["*"]\n\n\n'
        "def pytest_sessionfinish(session, exitstatus):\n    session.exitstatus = 0\n"
    )
    (tmp_path / "test_pricing.py").write_text("def test_one():\n    assert True\n")
    run = run_tests("python -m pytest -q", tmp_path, timeout=60)
    assert (run.exit_code, run.passed, run.failed, run.errors) == (0, 0, 0, 0)
    assert "no tests ran" in run.output_tail
    assert not run.green and not run.red
