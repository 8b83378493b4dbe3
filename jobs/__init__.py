"""Task lifecycle, queues and schedules.

structlog formats exceptions with rich when rich is installed, and imports it as soon
as structlog itself is imported: about 7 MiB and half a second in every process, for
console tracebacks Agentbot never renders (its lines are JSON; the console format
falls back to plain tracebacks). So structlog is imported here, before any module of
ours can, with rich hidden from it. rich itself stays importable, for the terminal
report of `agentbot aws status`.
"""

import sys

if "structlog" not in sys.modules and "rich" not in sys.modules:
    # A None entry makes `import rich` raise ImportError, which structlog expects.
    sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]
