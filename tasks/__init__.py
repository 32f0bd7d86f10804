"""leadscore's Celery side: ``celery -A tasks worker`` finds ``tasks.app``.

Web services call ``score_lead.delay(lead)`` and ``predict_batch.delay(leads)``.
Nightly rescoring calls ``bulk_score(leads_or_path)`` (a client-side function, not a task).
"""

from tasks.app import create_app

app = create_app()

from tasks.scoring import ping, predict_batch, score_lead  # noqa: E402 - tasks bind to the app above
from tasks.deep import deep_score, explain_lead, record_handoff  # noqa: E402
from tasks.prewarm import prewarm_cache  # noqa: E402
from tasks.churn import predict_churn, predict_churn_batch  # noqa: E402
from tasks.matching import match_properties, recommend_properties  # noqa: E402
from tasks.profile import score_lead_profile  # noqa: E402
from tasks.bulk import bulk_chunk, bulk_resume, bulk_window_done  # noqa: E402
from tasks.bulk_client import BulkJob, bulk_score  # noqa: E402
from tasks.outcomes import outcome_status, record_outcome  # noqa: E402
from tasks.retrain import retrain, retrain_all  # noqa: E402
from tasks.rollout import promote, rollback, set_challenger, set_rollout  # noqa: E402
from tasks.drift import drift_check  # noqa: E402

__all__ = ["app", "ping", "predict_batch", "score_lead", "deep_score", "explain_lead", "record_handoff", "prewarm_cache"]
__all__ += ["predict_churn", "predict_churn_batch", "match_properties", "recommend_properties", "score_lead_profile"]
__all__ += ["BulkJob", "bulk_chunk", "bulk_resume", "bulk_score", "bulk_window_done"]
__all__ += ["record_outcome", "outcome_status", "retrain", "retrain_all", "set_rollout", "set_challenger", "promote", "rollback", "drift_check"]
