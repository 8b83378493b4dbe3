"""The real runners, run on small projects of our own, read as a person reads them.

Each project is written here and run through `run_tests`, the bot's own path: the
runner's real output is what gets counted. The JavaScript runners come from npm (see
`tests.fakes.js_runners`), cargo and node from the machine.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from agents.env import CarriedEnvironment
from agents.sandbox import Sandbox
from agents.testing import TestRun as SuiteRun
from agents.testing import run_tests
from tests.fakes.js_runners import ensure_js_runners, link_node_modules

SUM_CJS = "exports.add = (a, b) => a + b;\n"
SUM_ESM = "export const add = (a, b) => a + b;\n"


@pytest.fixture(scope="module")
def js_modules() -> Path:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed, so the JavaScript runners cannot be fetched")
    return ensure_js_runners()


def project(root: Path, files: dict[str, str], modules: Path | None = None) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content))
    if modules is not None:
        link_node_modules(root, modules)
    return root


def showing(*toolchains: Path | str) -> Sandbox:
    """The bot's sandbox, with toolchains that live outside the system paths shown read-only.

    An operator does the same with `[agent] sandbox_read_only`.
    """
    return Sandbox(read_only=tuple(str(Path(path).resolve()) for path in toolchains))


def counts(run: SuiteRun) -> tuple[int, int, int]:
    return run.passed, run.failed, run.errors


# -- unittest ----------------------------------------------------------------------------


def test_unittest_skipped_tests_are_not_passes(tmp_path: Path) -> None:
    """`Ran 3 tests … OK (skipped=1)` is 2 passed: a skip cannot hold up the test floor."""
    project(
        tmp_path,
        {
            "test_pricing.py": """\
                import unittest

                class PricingTest(unittest.TestCase):
                    def test_one(self):
                        self.assertEqual(1, 1)

                    def test_two(self):
                        self.assertEqual(2, 2)

                    @unittest.skip("not on this platform")
                    def test_three(self):
                        self.fail()
                """
        },
    )
    run = run_tests("python3 -m unittest", tmp_path, timeout=60)
    assert "OK (skipped=1)" in run.output_tail
    assert counts(run) == (2, 0, 0)
    assert run.green


def test_unittest_failing_subtests_count_once_per_test(tmp_path: Path) -> None:
    """Five failing subTests are one failed test, never a negative number passed."""
    project(
        tmp_path,
        {
            "test_rates.py": """\
                import unittest

                class RateTest(unittest.TestCase):
                    def test_rates(self):
                        for percent in range(5):
                            with self.subTest(percent=percent):
                                self.assertEqual(percent, -1)

                    def test_zero(self):
                        self.assertEqual(0, 0)
                """
        },
    )
    run = run_tests("python3 -m unittest", tmp_path, timeout=60)
    assert "Ran 2 tests" in run.output_tail
    assert "FAILED (failures=5)" in run.output_tail
    assert counts(run) == (1, 1, 0)
    assert run.red


def test_two_unittest_runs_in_one_script_add_up(tmp_path: Path) -> None:
    """A script that runs two suites is read whole, not only its last summary."""
    project(
        tmp_path,
        {
            "unit/test_a.py": "import unittest\n\n"
            "class A(unittest.TestCase):\n"
            "    def test_a(self):\n        self.assertTrue(False)\n",
            "integration/test_b.py": "import unittest\n\n"
            "class B(unittest.TestCase):\n"
            "    def test_b(self):\n        pass\n\n"
            "    def test_c(self):\n        pass\n",
        },
    )
    command = (
        "python3 -m unittest discover -s unit; a=$?; "
        "python3 -m unittest discover -s integration; exit $((a || $?))"
    )
    run = run_tests(command, tmp_path, timeout=60)
    assert counts(run) == (2, 1, 0)


def test_two_pytest_runs_in_one_script_add_up(tmp_path: Path) -> None:
    """`pytest unit && pytest integration`: both summaries count."""
    project(
        tmp_path,
        {
            "unit/test_a.py": "def test_a():\n    pass\n",
            "integration/test_b.py": "def test_b():\n    pass\n\ndef test_c():\n    pass\n",
        },
    )
    # No plugins: each of the two runs starts in well under a second.
    pytest = "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python -m pytest -q -p no:cacheprovider"
    command = f"{pytest} unit && {pytest} integration"
    run = run_tests(command, tmp_path, timeout=60)
    assert counts(run) == (3, 0, 0)
    assert run.green


# -- node --test ---------------------------------------------------------------------------


def test_node_test_runner_is_read(tmp_path: Path) -> None:
    """`node --test`'s TAP totals: a pass, a failure, a skip and a file that cannot load."""
    project(
        tmp_path,
        {
            "package.json": '{"name": "shop", "version": "1.0.0"}\n',
            "sum.js": SUM_CJS,
            "test/sum.test.js": """\
                const assert = require('node:assert');
                const { test } = require('node:test');
                const { add } = require('../sum.js');
                test('adds', () => assert.strictEqual(add(1, 2), 3));
                test('adds wrongly', () => assert.strictEqual(add(1, 2), 4));
                test.skip('later', () => {});
                """,
            "test/discount.test.js": "const { discount } = require('../discount.js');\n",
        },
    )
    run = run_tests("node --test", tmp_path, timeout=60)
    assert "# pass 1" in run.output_tail and "# fail 2" in run.output_tail
    assert counts(run) == (1, 1, 1)
    assert run.red

    (tmp_path / "test" / "discount.test.js").unlink()

    (tmp_path / "test" / "sum.test.js").write_text(
        "const assert = require('node:assert');\nconst { test } = require('node:test');\n"
        "const { add } = require('../sum.js');\n"
        "test('adds', () => assert.strictEqual(add(1, 2), 3));\n"
    )
    green = run_tests("node --test", tmp_path, timeout=60)
    assert counts(green) == (1, 0, 0)
    assert green.green


# -- jest and vitest -----------------------------------------------------------------------


def test_jest_counts_a_test_file_that_fails_to_load(tmp_path: Path, js_modules: Path) -> None:
    """A new jest test importing what does not exist yet is an error, as in pytest."""
    project(
        tmp_path,
        {
            "package.json": '{"name": "shop", "version": "1.0.0"}\n',
            "sum.js": SUM_CJS,
            "sum.test.js": """\
                const { add } = require('./sum.js');
                test('adds', () => expect(add(1, 2)).toBe(3));
                test.skip('later', () => {});
                """,
            "discount.test.js": """\
                const { discount } = require('./discount.js');
                test('ten percent', () => expect(discount(200, 10)).toBe(180));
                """,
        },
        js_modules,
    )
    run = run_tests(
        "node_modules/.bin/jest --ci", tmp_path, timeout=120, sandbox=showing(js_modules)
    )
    assert "Test suite failed to run" in run.output_tail
    assert counts(run) == (1, 0, 1)
    assert run.red


def test_vitest_counts_a_test_file_that_fails_to_load(tmp_path: Path, js_modules: Path) -> None:
    """vitest's failed suite (a missing import) is an error beside the tests that ran."""
    project(
        tmp_path,
        {
            "package.json": '{"name": "shop", "version": "1.0.0", "type": "module"}\n',
            "sum.js": SUM_ESM,
            "sum.test.js": """\
                import { test, expect } from 'vitest';
                import { add } from './sum.js';
                test('adds', () => expect(add(1, 2)).toBe(3));
                test('adds wrongly', () => expect(add(1, 2)).toBe(4));
                """,
            "discount.test.js": """\
                import { test, expect } from 'vitest';
                import { discount } from './discount.js';
                test('ten percent', () => expect(discount(200, 10)).toBe(180));
                """,
        },
        js_modules,
    )
    run = run_tests(
        "node_modules/.bin/vitest run", tmp_path, timeout=120, sandbox=showing(js_modules)
    )
    assert "Failed Suites 1" in run.output_tail
    assert counts(run) == (1, 1, 1)


# -- mocha and ava -------------------------------------------------------------------------


def test_mocha_that_cannot_load_its_only_file_is_an_error(tmp_path: Path, js_modules: Path) -> None:
    """`Exception during run` and no summary: an error, not a run of nothing."""
    project(
        tmp_path,
        {
            "package.json": '{"name": "shop", "version": "1.0.0"}\n',
            "test/discount.test.js": """\
                const assert = require('node:assert');
                const { discount } = require('../discount.js');
                it('takes ten percent', () => assert.strictEqual(discount(200, 10), 180));
                """,
        },
        js_modules,
    )
    run = run_tests("node_modules/.bin/mocha", tmp_path, timeout=60, sandbox=showing(js_modules))
    assert "Exception during run" in run.output_tail
    assert counts(run) == (0, 0, 1)
    assert run.red

    (tmp_path / "discount.js").write_text("exports.discount = (p, r) => p - p * r / 100;\n")
    green = run_tests("node_modules/.bin/mocha", tmp_path, timeout=60, sandbox=showing(js_modules))
    assert "1 passing" in green.output_tail
    assert counts(green) == (1, 0, 0)
    assert green.green


def test_ava_is_read_with_and_without_failures(tmp_path: Path, js_modules: Path) -> None:
    """ava's summary leaves out the passed count once anything fails; the ticks count."""
    project(
        tmp_path,
        {
            # node_modules is the shared, read-only install: ava keeps no cache in it.
            "package.json": '{"name": "shop", "version": "1.0.0", "type": "module", '
            '"ava": {"cache": false}}\n',
            "sum.js": SUM_ESM,
            "sum.test.js": """\
                import test from 'ava';
                import { add } from './sum.js';
                test('adds', t => t.is(add(1, 2), 3));
                test('adds again', t => t.is(add(2, 2), 4));
                test('adds wrongly', t => t.is(add(1, 2), 4));
                test.skip('later', t => t.pass());
                """,
            "discount.test.js": """\
                import test from 'ava';
                import { discount } from './discount.js';
                test('ten percent', t => t.is(discount(200, 10), 180));
                """,
        },
        js_modules,
    )
    run = run_tests("node_modules/.bin/ava", tmp_path, timeout=120, sandbox=showing(js_modules))
    assert "1 test failed" in run.output_tail
    assert "1 uncaught exception" in run.output_tail
    assert counts(run) == (2, 1, 1)

    (tmp_path / "discount.test.js").unlink()
    (tmp_path / "sum.test.js").write_text(
        "import test from 'ava';\nimport { add } from './sum.js';\n"
        "test('adds', t => t.is(add(1, 2), 3));\n"
    )
    green = run_tests("node_modules/.bin/ava", tmp_path, timeout=120, sandbox=showing(js_modules))
    assert "1 test passed" in green.output_tail
    assert counts(green) == (1, 0, 0)
    assert green.green


# -- cargo ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cargo_environment() -> CarriedEnvironment:
    """What an operator passes so a rustup-installed cargo finds its toolchain."""
    if shutil.which("cargo") is None:
        pytest.skip("cargo is not installed")
    home = Path.home()
    values = {
        "RUSTUP_HOME": os.environ.get("RUSTUP_HOME", str(home / ".rustup")),
        "CARGO_HOME": os.environ.get("CARGO_HOME", str(home / ".cargo")),
    }
    return CarriedEnvironment(values={k: v for k, v in values.items() if Path(v).is_dir()})


CARGO_TOML = '[package]\nname = "pricing"\nversion = "0.1.0"\nedition = "2021"\n'


def test_cargo_test_target_that_does_not_compile_is_an_error(
    tmp_path: Path, cargo_environment: CarriedEnvironment
) -> None:
    """A new Rust test calling what does not exist yet is an error, then GREEN passes."""
    lib = """\
        pub fn add(a: i32, b: i32) -> i32 {{ a + b }}
        {discount}
        #[cfg(test)]
        mod tests {{
            use super::*;
            #[test]
            fn adds() {{ assert_eq!(add(1, 2), 3); }}
            #[test]
            fn discounts() {{ assert_eq!(discount(200, 10), 180); }}
        }}
        """
    project(tmp_path, {"Cargo.toml": CARGO_TOML, "src/lib.rs": lib.format(discount="")})
    command = "cargo test --offline"
    run = run_tests(
        command,
        tmp_path,
        timeout=300,
        carried=cargo_environment,
        sandbox=showing(*cargo_environment.values.values()),
    )
    assert "could not compile" in run.output_tail
    assert counts(run) == (0, 0, 1)
    assert run.red

    fixed = "pub fn discount(p: i32, r: i32) -> i32 { p - p * r / 100 }"
    (tmp_path / "src" / "lib.rs").write_text(textwrap.dedent(lib.format(discount=fixed)))
    green = run_tests(
        command,
        tmp_path,
        timeout=300,
        carried=cargo_environment,
        sandbox=showing(*cargo_environment.values.values()),
    )
    assert counts(green) == (2, 0, 0)
    assert green.green
