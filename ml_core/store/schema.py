"""The tables of the state store (SQLAlchemy Core). Changed only together with a migration."""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

models = Table(
    "models", metadata,
    Column("model", String(100), primary_key=True),
    Column("champion", String(20)),
    Column("challenger", String(20)),
    Column("challenger_mode", String(10)),
    Column("challenger_percent", Float),
    Column("challenger_since", String(40)),
)

versions = Table(
    "versions", metadata,
    Column("model", String(100), primary_key=True),
    Column("version", String(20), primary_key=True),
    Column("number", Integer, nullable=False),
    Column("card", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
)

blobs = Table(
    "blobs", metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

history = Table(
    "history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(100), nullable=False, index=True),
    Column("ts", String(40), nullable=False),
    Column("event", String(40), nullable=False),
    Column("entry", Text, nullable=False),
)

outcomes = Table(
    "outcomes", metadata,
    Column("model", String(100), primary_key=True),
    Column("lead_id", String(200), primary_key=True),
    Column("property_id", String(200), primary_key=True, server_default=""),
    Column("outcome", Integer, nullable=False),
    Column("occurred_at", String(40), nullable=False),
    Column("recorded_at", String(40), nullable=False),
    Column("features", Text),
    Column("scored_version", String(20)),
    Column("scored_at", String(40)),
)
