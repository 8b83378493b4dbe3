"""Reading passed / failed / error counts out of what a test command printed.

Each runner a team may have behind its test command gets a reader that knows the shape
of that runner's own summary; the counts are what a person reading the output would
say. A test script may run several suites (`pytest unit && pytest integration`, or a
`npm test` that runs jest and then node's own runner), so every summary found counts,
not only the last. A file or suite that could not even load (an import of what does not
exist yet, the usual RED) counts as an error, as pytest counts a collection error; so
does a Rust test target that does not compile.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class Counts:
    """Tests that passed, failed and errored (could not load, compile or set up)."""

    passed: int = 0
    failed: int = 0
    errors: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.passed + other.passed, self.failed + other.failed, self.errors + other.errors
        )

    def as_tuple(self) -> tuple[int, int, int]:
        """`(passed, failed, errors)`."""
        return self.passed, self.failed, self.errors


Reader = Callable[[Sequence[str]], Counts | None]


# -- pytest ------------------------------------------------------------------------------

# `=== 3 passed, 1 failed, 2 errors in 0.12s ===`, `-q`'s bare `3 passed in 0.12s`, and
# `no tests ran in 0.01s`.
PYTEST_SUMMARY = re.compile(
    r"^=*\s*((?:\d+ [a-z]+(?:, )?)+|no tests ran) in \d+(?:\.\d+)?s\b(?: \([^)]*\))?\s*=*$"
)
PYTEST_WORD = re.compile(r"(\d+) ([a-z]+)")


def _pytest(lines: Sequence[str]) -> Counts | None:
    found = [m for line in lines if (m := PYTEST_SUMMARY.match(line.strip()))]
    if not found:
        return None
    total = Counts()
    for match in found:
        words = {word: int(n) for n, word in PYTEST_WORD.findall(match[1])}
        total += Counts(
            words.get("passed", 0),
            words.get("failed", 0),
            words.get("error", 0) + words.get("errors", 0),
        )
    return total


# -- unittest ----------------------------------------------------------------------------

UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in ")
UNITTEST_VERDICT = re.compile(r"^(OK|FAILED)(?: \((.*)\))?$")
# `FAIL: test_rate (test_pricing.PricingTest.test_rate) (percent=10)`: a subTest's
# failure names its test, then the subTest's parameters.
UNITTEST_PROBLEM = re.compile(r"^(FAIL|ERROR): (\S+ \([^)]*\))")


def _unittest(lines: Sequence[str]) -> Counts | None:
    """`Ran N tests` and the `OK` / `FAILED (…)` verdict after it, per run.

    Skipped tests and expected failures are not passes. A test whose subTests fail is
    one failed test, however many of its subTests failed: unittest's `failures=` counts
    subTests, so it can exceed the tests that ran.
    """
    total, found = Counts(), False
    start = 0
    for index, line in enumerate(lines):
        ran = UNITTEST_RAN.match(line)
        if not ran:
            continue
        verdict = next(
            (m for later in lines[index + 1 : index + 6] if (m := UNITTEST_VERDICT.match(later))),
            None,
        )
        if verdict is None:
            continue
        found = True
        tests = int(ran[1])
        details = dict(part.split("=", 1) for part in (verdict[2] or "").split(", ") if "=" in part)
        failing: set[str] = set()
        erroring: set[str] = set()
        for earlier in lines[start:index]:
            if problem := UNITTEST_PROBLEM.match(earlier):
                (failing if problem[1] == "FAIL" else erroring).add(problem[2])
        # Headers name each failing test; without them, the verdict's numbers are all.
        failed = len(failing) if failing else int(details.get("failures", 0))
        errors = len(erroring - failing) if erroring else int(details.get("errors", 0))
        failed += int(details.get("unexpected successes", 0))
        failed, errors = min(failed, tests), min(errors, max(tests - failed, 0))
        not_passed = (
            failed
            + errors
            + int(details.get("skipped", 0))
            + int(details.get("expected failures", 0))
        )
        total += Counts(max(tests - not_passed, 0), failed, errors)
        start = index + 1
    return total if found else None


# -- cargo -------------------------------------------------------------------------------

CARGO_RESULT = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed")
# `error: could not compile `pricing` (lib test) due to 1 previous error`
CARGO_NO_COMPILE = re.compile(r"^error: could not compile `[^`]+`")


def _cargo(lines: Sequence[str]) -> Counts | None:
    results = [m for line in lines if (m := CARGO_RESULT.match(line.strip()))]
    broken = sum(1 for line in lines if CARGO_NO_COMPILE.match(line.strip()))
    if not results and not broken:
        return None
    return Counts(sum(int(m[1]) for m in results), sum(int(m[2]) for m in results), broken)


# -- jest and vitest ---------------------------------------------------------------------

# `Tests:       1 failed, 1 skipped, 3 passed, 5 total`
JEST_TESTS = re.compile(r"^Tests:\s+(.*\d+ total)$")
JEST_SUITES = re.compile(r"^Test Suites:\s+.*\d+ total$")
JEST_NOT_LOADED = re.compile(r"^\s*● Test suite failed to run")
# `Tests  1 failed | 3 passed | 1 skipped (5)` or `Tests  no tests`
VITEST_TESTS = re.compile(r"^Tests\s+((?:\d+ [a-z]+(?: \| )?)+ \(\d+\)|no tests)$")
VITEST_FILES = re.compile(r"^Test Files\s+.*\(\d+\)$")
VITEST_NOT_LOADED = re.compile(r"Failed Suites (\d+)")
WORD_COUNT = re.compile(r"(\d+) ([a-z]+)")


def _jest(lines: Sequence[str]) -> Counts | None:
    summaries = [m for line in lines if (m := JEST_TESTS.match(line.strip()))]
    if not summaries and not any(JEST_SUITES.match(line.strip()) for line in lines):
        return None
    total = Counts(errors=sum(1 for line in lines if JEST_NOT_LOADED.match(line)))
    for match in summaries:
        words = {word: int(n) for n, word in WORD_COUNT.findall(match[1])}
        total += Counts(words.get("passed", 0), words.get("failed", 0))
    return total


def _vitest(lines: Sequence[str]) -> Counts | None:
    summaries = [m for line in lines if (m := VITEST_TESTS.match(line.strip()))]
    if not summaries and not any(VITEST_FILES.match(line.strip()) for line in lines):
        return None
    total = Counts(errors=sum(int(m[1]) for line in lines if (m := VITEST_NOT_LOADED.search(line))))
    for match in summaries:
        words = {word: int(n) for n, word in WORD_COUNT.findall(match[1])}
        total += Counts(words.get("passed", 0), words.get("failed", 0))
    return total


# -- node --test -------------------------------------------------------------------------

# TAP's `# pass 3` (the reporter when output is not a terminal) or the spec reporter's
# same line behind an information sign (U+2139).
NODE_TOTAL = re.compile(r"^(?:#|\u2139) (tests|pass|fail|cancelled) (\d+)$")


NODE_NOT_OK = re.compile(r"^\s*not ok \d+ - ")
# A file that failed as a process (it could not load, or exited) reports its exit code.
NODE_EXIT_CODE = re.compile(r"^\s*exitCode: \d+$")


def _node(lines: Sequence[str]) -> Counts | None:
    """The totals node prints; a test file that failed to load is an error, not a test
    that failed, though node counts it among `fail`."""
    # Each run prints each total once, so adding them up covers several runs.
    totals = [m for line in lines if (m := NODE_TOTAL.match(line.strip()))]
    if not any(m[1] == "tests" for m in totals):
        return None
    passed = sum(int(m[2]) for m in totals if m[1] == "pass")
    failed = sum(int(m[2]) for m in totals if m[1] in ("fail", "cancelled"))
    broken = 0
    for index, line in enumerate(lines):
        if NODE_NOT_OK.match(line):
            block = itertools.takewhile(lambda text: text.strip() != "...", lines[index + 1 :])
            broken += any(NODE_EXIT_CODE.match(text) for text in block)
    broken = min(broken, failed)
    return Counts(passed, failed - broken, broken)


# -- mocha -------------------------------------------------------------------------------

MOCHA = re.compile(r"^\s*(\d+) (passing|failing)\b")
MOCHA_NOT_LOADED = re.compile(r"^\s*Exception during run: ")


def _mocha(lines: Sequence[str]) -> Counts | None:
    counted = [m for line in lines if (m := MOCHA.match(line))]
    # A file mocha cannot load stops the whole run before any test: no summary at all.
    broken = sum(1 for line in lines if MOCHA_NOT_LOADED.match(line))
    if not counted and not broken:
        return None
    passed = sum(int(m[1]) for m in counted if m[2] == "passing")
    failed = sum(int(m[1]) for m in counted if m[2] == "failing")
    return Counts(passed, failed, broken)


# -- ava ---------------------------------------------------------------------------------

AVA_PASSED = re.compile(r"^(\d+) tests? passed$")
AVA_FAILED = re.compile(r"^(\d+) (?:tests? failed|tests? remained pending after a timeout)$")
AVA_ERRORS = re.compile(r"^(\d+) (?:hooks? failed|uncaught exceptions?|unhandled rejections?)$")
AVA_KNOWN_FAILURE = re.compile(r"^(\d+) known failures?$")
AVA_PASS_LINE = re.compile(r"^✔ ")


def _ava(lines: Sequence[str]) -> Counts | None:
    """ava's closing lines; with any failure it leaves out the passed count, so the
    `✔` line of each passing test is counted instead."""
    stripped = [line.strip() for line in lines]

    def total(pattern: re.Pattern[str]) -> int:
        return sum(int(m[1]) for line in stripped if (m := pattern.match(line)))

    if not any(p.match(line) for line in stripped for p in (AVA_PASSED, AVA_FAILED, AVA_ERRORS)):
        return None
    passed = total(AVA_PASSED)
    failed, errors = total(AVA_FAILED), total(AVA_ERRORS)
    if failed or errors:
        passed = sum(1 for line in stripped if AVA_PASS_LINE.match(line))
    return Counts(passed + total(AVA_KNOWN_FAILURE), failed, errors)


# -- go and RSpec ------------------------------------------------------------------------

GO_TEST = re.compile(r"^\s*--- (PASS|FAIL): ")
GO_NO_BUILD = re.compile(r"^FAIL\s+\S+ \[(?:build|setup) failed\]$")
RSPEC = re.compile(
    r"^(\d+) examples?, (\d+) failures?(?:, \d+ pending)?"
    r"(?:, (\d+) errors? occurred outside of examples)?$"
)


def _go(lines: Sequence[str]) -> Counts | None:
    verdicts = [m[1] for line in lines if (m := GO_TEST.match(line))]
    broken = sum(1 for line in lines if GO_NO_BUILD.match(line.strip()))
    if not verdicts and not broken:
        return None
    return Counts(verdicts.count("PASS"), verdicts.count("FAIL"), broken)


def _rspec(lines: Sequence[str]) -> Counts | None:
    found = [m for line in lines if (m := RSPEC.match(line.strip()))]
    if not found:
        return None
    total = Counts()
    for m in found:
        examples, failures, outside = int(m[1]), int(m[2]), int(m[3] or 0)
        total += Counts(examples - failures, failures, outside)
    return total


# -- anything else -----------------------------------------------------------------------

ANY_COUNT = re.compile(r"(\d+) (passed|failed|errors?)\b")


def _generic(lines: Sequence[str]) -> Counts | None:
    """The last line that says `N passed, N failed`, for a runner not known by name."""
    for line in reversed(lines):
        counted = ANY_COUNT.findall(line)
        if counted:
            words = {word: int(n) for n, word in counted}
            return Counts(
                words.get("passed", 0),
                words.get("failed", 0),
                words.get("error", 0) + words.get("errors", 0),
            )
    return None


READERS: tuple[Reader, ...] = (
    _pytest,
    _unittest,
    _cargo,
    _jest,
    _vitest,
    _node,
    _mocha,
    _ava,
    _go,
    _rspec,
)


def parse_counts(output: str) -> tuple[int, int, int]:
    """Passed / failed / error counts of everything the output's runners summarised.

    Every known runner's summaries are read and added up (a script may run several);
    only when none is found does a line saying `N passed, N failed` count. An output
    nobody summarised counts as nothing ran, so it never passes for RED or GREEN.
    """
    lines = [ANSI.sub("", line) for line in output.splitlines()]
    found = [counts for read in READERS if (counts := read(lines)) is not None]
    if not found:
        found = [counts for counts in (_generic(lines),) if counts is not None]
    total = Counts()
    for counts in found:
        total += counts
    return total.as_tuple()
