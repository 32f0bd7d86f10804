"""What a web service imports: ``ScoreClient`` (cached scores) and ``bulk_score``.

Importing it loads neither the worker runtime nor the training stack (tests/unit/test_imports.py).
"""

from leadscore.client.score_client import ScoreClient

__all__ = ["ScoreClient"]
