"""The lifecycle's state store: what every host of a fleet must agree on, in one database.

    models     per model: the champion, and the challenger with its mode, share and start
    versions   per registered version: its card (features, metrics, the sha256 of every file)
    blobs      every registered file, addressed by its sha256 (what a host fetches into its cache)
    history    per model: retrains, challengers, modes, promotions, rollbacks (append only)
    outcomes   per model and lead (and property): the label and the features it was scored on

Any SQLAlchemy URL: SQLite in the data directory by default (one host, no server), PostgreSQL for
a fleet (``postgresql+psycopg://``). Pointer changes are transactions that lock the model's row
(``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` on PostgreSQL), so two hosts changing a
rollout at once serialize, and the second sees the first's result. The schema is versioned with
Alembic (``ml_core.store.migrate``); a process refuses a store whose schema is not the one it
knows. SQLAlchemy is imported when a store is first used, never by importing this package.
"""
