"""The fleet's Prometheus exporter (``leadscore metrics``, one per fleet).

Figures that belong to the fleet, not to one worker, read from Redis at scrape time: cache lookups
by web services, and the recent traffic's escalation rate and band shares beside the card's
(``leadscore/stores/traffic_mix.py``). Served by every worker, they would be counted once per worker;
each worker serves its own samples (``leadscore/worker/metrics.py``). It reads no directory.
"""

from __future__ import annotations

from collections.abc import Iterator

from leadscore.settings import Settings


def serve(settings: Settings) -> None:
    """Run the fleet's exporter: cache lookups and the recent traffic mix, read from Redis at scrape time."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

    from leadscore.stores.cache import cache_counts, store_of
    from leadscore.stores.state import registry as state_registry
    from leadscore.stores.traffic_mix import traffic_mix
    from ml_core.spec import available_models

    class CacheCollector:
        def collect(self) -> Iterator[Metric]:
            family = CounterMetricFamily("leadscore_cache_lookups", "Prediction cache lookups by web services", labels=["model", "outcome"])
            for model, counts in cache_counts(settings).items():
                for outcome, n in counts.items():
                    family.add_metric([model, outcome], n)
            yield family

    class TrafficCollector:
        def collect(self) -> Iterator[Metric]:
            recent_esc = GaugeMetricFamily("leadscore_recent_escalation_rate", "Share of the last scored leads escalated", labels=["model", "version"])
            recent_band = GaugeMetricFamily(
                "leadscore_recent_band_share", "Share of the last scored leads in each label band", labels=["model", "version", "band"]
            )
            card_esc = GaugeMetricFamily("leadscore_card_escalation_rate", "Share escalated out of fold, from the version's card", labels=["model", "version"])
            card_band = GaugeMetricFamily("leadscore_card_band_share", "Band share out of fold, from the version's card", labels=["model", "version", "band"])
            mix = traffic_mix(store_of(settings), state_registry(settings), available_models(settings.models_dir))
            for model, versions in mix.items():
                for version, t in versions.items():
                    recent_esc.add_metric([model, version], t["escalated"])
                    for band, share in t["bands"].items():
                        recent_band.add_metric([model, version, band], share)
                    if t["expected"]:
                        card_esc.add_metric([model, version], t["expected"]["escalated"])
                        for band, share in t["expected"]["bands"].items():
                            card_band.add_metric([model, version, band], share)
            yield from (recent_esc, recent_band, card_esc, card_band)

    registry = CollectorRegistry()
    registry.register(CacheCollector())
    registry.register(TrafficCollector())
    start_http_server(settings.metrics_port, addr=settings.metrics_address, registry=registry)
