"""Which changed files the approved plan's affected files cover (`jobs.scope`)."""

from __future__ import annotations

import pytest

from jobs.scope import outside_plan


@pytest.mark.parametrize(
    ("entry", "path", "covered"),
    [
        ("pricing.py", "pricing.py", True),
        ("./pricing.py", "pricing.py", True),
        ("pricing.py", "pricing.pyc", False),
        ("src/", "src/shop/cart.py", True),
        ("src", "src/shop/cart.py", True),
        ("src", "srcs/cart.py", False),
        ("tests/test_*.py", "tests/test_cart.py", True),
        ("tests/test_*.py", "tests/helpers.py", False),
        ("", "anything.py", False),
    ],
)
def test_an_entry_covers_its_file_its_directory_or_its_glob(
    entry: str, path: str, covered: bool
) -> None:
    """A file, a directory (with or without its slash) and a glob; nothing more."""
    assert outside_plan([path], [entry]) == ([] if covered else [path])


def test_files_outside_are_listed_in_the_order_changed() -> None:
    """What the card lists: the uncovered files, in the diff's order."""
    changed = ["notes.md", "pricing.py", "tests/test_discount.py", "setup.cfg"]
    assert outside_plan(changed, ["pricing.py", "tests/"]) == ["notes.md", "setup.cfg"]
