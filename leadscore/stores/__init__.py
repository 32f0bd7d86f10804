"""Redis-backed state that several processes share: the prediction cache, event streams, bulk
jobs, recent leads and leases. Each module owns its keys."""
