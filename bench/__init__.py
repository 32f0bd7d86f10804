"""leadscore's benchmark harness: ``scripts/bench`` (or ``.venv/bin/python -m bench``) writes BENCHMARKS.md.

It starts its own workers on the configured Redis (``LEADSCORE_BROKER_URL``), with the stack's
exact worker commands (``leadscore.cli.stack.commands``) on queues of their own, so a running stack
never takes its tasks. Every figure in the report is measured in the same run.

A section is a module in ``bench/`` with ``TITLE`` and ``run(ctx: BenchContext) -> Section``,
listed in ``bench.sections.SECTIONS``; to add one (say ``bench/cache_bench.py``), write the
module and add its name to that list. ``ctx`` holds the quick flag, the client app, the worker
pool, the model and helpers for leads; ``bench.report`` has the ``Section``, ``Table`` and
``Target`` types a section returns.
"""
