"""State that several processes share: in Redis, the prediction cache, event streams, bulk jobs,
recent leads and leases (each module owns its keys); in the state store (``state``, SQL), the
model lifecycle: versions, artifacts, pointers, history, outcomes."""
