"""Property tasks: thin JSON adapters over ``ml_core.matching``."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from leadscore.settings import get_settings
from leadscore.worker.challenger import after_ranking, choose_scorer
from leadscore.worker.process import model_pool
from ml_core.errors import LeadscoreError
from ml_core.identifiers import model_name
from ml_core.matching import ScoredPair, rank_properties

MATCH_MODEL = "property_matcher"
PAIR_MODELS = (MATCH_MODEL, "property_interest_predictor", "viewing_probability_predictor")


def rank(lead: Any, properties: Any, top_k: int | None, models: tuple[str, ...], order_by: str | None) -> dict[str, Any]:
    settings = get_settings()
    pool = model_pool()
    served = [pool.get(name) for name in models]  # held to the end: a hot reload never changes this ranking's versions
    pairs: list[ScoredPair] = []
    result = rank_properties(
        served,
        lead,
        properties,
        top_k=top_k,
        order_by=order_by,
        unknown_fields=settings.unknown_fields,
        max_properties=settings.max_batch_size,
        on_scored=pairs.extend,
        scored_limit=settings.snapshot_ranked_pairs,
        scorers={s.spec.name: choose_scorer(s, lead) for s in served},
    )
    after_ranking(served, result, pairs)
    return result


@shared_task(name="leadscore.match_properties", acks_late=True, throws=(LeadscoreError,))
def match_properties(lead: dict[str, Any], properties: list[Any], top_k: int | None = 10, model: str = MATCH_MODEL) -> dict[str, Any]:
    """Properties ranked by how well each fits ``lead["preferences"]``: the ``top_k`` best (null: all)."""
    model = model_name(model)
    return rank(lead, properties, top_k, (model,), model)


@shared_task(name="leadscore.recommend_properties", acks_late=True, throws=(LeadscoreError,))
def recommend_properties(
    lead: dict[str, Any], properties: list[Any], top_k: int | None = 10, order_by: str = "property_interest_predictor"
) -> dict[str, Any]:
    """Properties with match, interest and viewing scores each, ordered by ``order_by`` (one of the three models)."""
    return rank(lead, properties, top_k, PAIR_MODELS, order_by)
