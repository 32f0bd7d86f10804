"""The report's sections, in order: module names under ``bench``, each with ``TITLE`` and ``run(ctx)``.

Add a section by writing its module and naming it here (``--sections`` picks a subset by name).
"""

SECTIONS = ("latency", "inference", "throughput", "memory", "context_bench", "imports", "batching")
