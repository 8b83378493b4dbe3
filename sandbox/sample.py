"""A small sample repository with a real bug, for the sandbox and the tests.

`pricing.apply_discount` subtracts the percentage as if it were an amount, so a 10%
discount on 200.00 gives 190.00 instead of 180.00. The suite passes (no test covers
discounts); the scripted agent's script adds the failing test and the fix.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

PRICING = '''\
"""Prices for the shop."""


def total(prices: list[float]) -> float:
    """Sum of the prices, rounded to cents."""
    return round(sum(prices), 2)


def apply_discount(price: float, percent: float) -> float:
    """The price after a percentage discount."""
    return round(price - percent, 2)
'''

TEST_TOTAL = """\
from pricing import total


def test_total_adds_prices():
    assert total([1.10, 2.20]) == 3.30


def test_total_of_nothing_is_zero():
    assert total([]) == 0
"""

TEST_DISCOUNT = """\
from pricing import apply_discount


def test_ten_percent_off_200_is_180():
    assert apply_discount(200.0, 10) == 180.0


def test_zero_percent_changes_nothing():
    assert apply_discount(99.99, 0) == 99.99
"""

PLAN = {
    "summary": "apply_discount subtracts the percentage as an amount; compute it as a share.",
    "root_cause": "pricing.apply_discount returns price - percent instead of "
    "price * (1 - percent / 100).",
    "affected_files": ["pricing.py", "tests/test_discount.py"],
    "steps": [
        {"kind": "test", "description": "Add tests/test_discount.py: 10% off 200 is 180."},
        {"kind": "implement", "description": "Compute the discount as price * percent / 100."},
        {"kind": "verify", "description": "Run the whole suite; all tests pass."},
    ],
    "test_command": "python -m pytest -q",
    "risk": "low",
    "estimated_minutes": 10,
}

# A change asked for on PLAN ("also 25% off 80.00 is 60.00") makes this one its v2.
TEST_QUARTER_OFF = """

def test_quarter_off_80_is_60():
    assert apply_discount(80.0, 25) == 60.0
"""

PLAN_WITH_QUARTER = {
    **PLAN,
    "steps": [
        {
            "kind": "test",
            "description": "Add tests/test_discount.py: 10% off 200 is 180, 25% off 80 is 60.",
        },
        {"kind": "implement", "description": "Compute the discount as price * percent / 100."},
        {"kind": "verify", "description": "Run the whole suite; all tests pass."},
    ],
}

# Specific scenarios first: the first whose words all appear is the one followed.
SCRIPT = {
    "scenarios": [
        {
            "match": ["slow"],
            "plan": PLAN,
            "red": [{"write": "tests/test_discount.py", "content": TEST_DISCOUNT}],
            "green": [],
            "delay_seconds": 120,
        },
        {
            # Slow enough to be caught between steps, then a real fix.
            "match": ["lingering"],
            "plan": PLAN,
            "red": [{"write": "tests/test_discount.py", "content": TEST_DISCOUNT}],
            "green": [
                {
                    "replace": "pricing.py",
                    "old": "return round(price - percent, 2)",
                    "new": "return round(price * (1 - percent / 100), 2)",
                }
            ],
            "delay_seconds": 4,
        },
        {
            "match": ["half-fix"],
            "plan": PLAN,
            "red": [{"write": "tests/test_discount.py", "content": TEST_DISCOUNT}],
            "green": [
                {
                    "replace": "pricing.py",
                    "old": "return round(price - percent, 2)",
                    "new": "return round(price - percent / 2, 2)",
                }
            ],
        },
        {
            "match": ["already-green"],
            "plan": PLAN,
            "red": [
                {
                    "write": "tests/test_more.py",
                    "content": TEST_TOTAL.replace("test_", "test_more_"),
                }
            ],
            "green": [],
        },
        {
            "match": ["broken-plan"],
            "plan": {"summary": "no steps at all"},
            "red": [],
            "green": [],
        },
        {
            "match": ["discount", "60.00"],
            "plan": PLAN_WITH_QUARTER,
            "changes": "The failing test also checks that 25% off 80.00 is 60.00.",
            "red": [
                {"write": "tests/test_discount.py", "content": TEST_DISCOUNT + TEST_QUARTER_OFF}
            ],
            "green": [
                {
                    "replace": "pricing.py",
                    "old": "return round(price - percent, 2)",
                    "new": "return round(price * (1 - percent / 100), 2)",
                }
            ],
        },
        {
            "match": ["discount"],
            "plan": PLAN,
            "red": [{"write": "tests/test_discount.py", "content": TEST_DISCOUNT}],
            "green": [
                {
                    "replace": "pricing.py",
                    "old": "return round(price - percent, 2)",
                    "new": "return round(price * (1 - percent / 100), 2)",
                }
            ],
        },
    ]
}


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Sample", "-c", "user.email=sample@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=60,
    )


def make_sample_repo(bare: Path) -> Path:
    """Create the sample as a bare repository at `bare` (the "remote"); returns it."""
    bare.parent.mkdir(parents=True, exist_ok=True)
    _git("init", "--bare", "--quiet", "--initial-branch=main", str(bare), cwd=bare.parent)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        _git("init", "--quiet", "--initial-branch=main", cwd=work)
        (work / "pricing.py").write_text(PRICING)
        (work / "tests").mkdir()
        (work / "tests" / "__init__.py").write_text("")
        (work / "tests" / "test_total.py").write_text(TEST_TOTAL)
        (work / "conftest.py").write_text("")
        (work / ".agentbot").mkdir()
        (work / ".agentbot" / "script.json").write_text(json.dumps(SCRIPT, indent=2))
        (work / "README.md").write_text("# shop-pricing\n\nA tiny pricing library.\n")
        _git("add", "--all", cwd=work)
        _git("commit", "--quiet", "-m", "Initial pricing library", cwd=work)
        _git("push", "--quiet", str(bare), "main", cwd=work)
    return bare
