"""Test-wide setup: integration tests get their own Redis databases, never the stack's.

The environment is set when this file is imported, the first conftest pytest loads: pytest
imports the conftest files of the paths on its command line *before* ``pytest_configure``, and
``tests/integration/conftest.py`` imports ``leadscore``, whose app reads the settings once. Set any
later, a targeted run (``scripts/test tests/integration/...``) sent its tasks to the default Redis.
"""

from __future__ import annotations

import os
import tempfile

TEST_REDIS = os.environ.get("LEADSCORE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
TEST_AMQP = os.environ.get("LEADSCORE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

os.environ["LEADSCORE_BROKER_URL"] = os.environ.get("LEADSCORE_TEST_BROKER_URL", f"{TEST_REDIS}/10")
os.environ["LEADSCORE_RESULT_BACKEND"] = f"{TEST_REDIS}/11"
os.environ["LEADSCORE_CACHE_URL"] = f"{TEST_REDIS}/12"
os.environ["LEADSCORE_LOCK_URL"] = f"{TEST_REDIS}/15"
os.environ.pop("LEADSCORE_EVENTS_URL", None)  # events share the test cache database
# The default state store lives in the data directory: a test that forgets to name its own never
# writes into the checkout's .data
os.environ["LEADSCORE_DATA_DIR"] = tempfile.mkdtemp(prefix="leadscore-test-data-")


def pytest_configure(config: object) -> None:
    from leadscore.settings import get_settings

    get_settings.cache_clear()


# CI explores the same examples on every run (the budget is fixed per test); locally each run
# draws new ones, which is how the fuzz tests keep finding things.
from hypothesis import settings as hypothesis_settings  # noqa: E402

hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")
