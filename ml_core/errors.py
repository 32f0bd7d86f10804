"""Typed errors of leadscore. Every message is built from identifiers, never from lead data.

    LeadscoreError
    ├── InvalidRecordError        an input record failed validation (final: never retried)
    │   ├── InvalidLeadError      a lead (its features or its preferences)
    │   └── InvalidPropertyError  a property listing offered for matching
    ├── InvalidPayloadError       a task message refused before decoding (e.g. nested too deep; final)
    ├── InvalidBatchError         a batch that is not a list, or larger than ``max_batch_size`` (final)
    ├── InvalidArgumentError      a task argument of the wrong type, e.g. ``explain="yes"`` (final)
    ├── SpecError                 a model spec is malformed
    ├── DatasetError              a training table does not match its spec
    ├── ModelNotFoundError        unknown model, unknown version, or no champion yet
    ├── ArtifactIntegrityError    a registered file is missing or fails its checksum
    ├── ModelLoadError            a verified artifact that ONNX Runtime could not load
    ├── RegistrationRefusedError  a trained model failed its quality gate or ONNX parity
    ├── ExplanationUnavailableError  no explanation for this model (rules served, or an unknown family)
    ├── LeadFileError             a lead file cannot be read as a whole (format, header)
    ├── BulkJobError              a bulk job is unknown, failed, or stopped making progress
    ├── InvalidOutcomeError       an outcome to record is malformed (final)
    ├── RolloutError              a promotion, rollback or rollout mode that cannot be done
    │   └── ConcurrentChangeError  another process changed the pointers first (nothing was changed here)
    ├── StoreUnavailableError     the state store (LEADSCORE_DATABASE_URL) cannot be reached
    └── StoreSchemaError          the state store's schema is not the one this leadscore needs

Exceptions cross the broker as JSON (type, module and ``args``), so every ``__init__`` takes
exactly the JSON-able arguments it stores in ``args``: the client gets the same typed error back.
Those arguments are capped (``MAX_PROBLEMS`` problems and a count, ``MAX_PROBLEM_CHARS`` per text):
a lead missing 10,000 features, or a spec naming them, must not put a 250 KB message in every
log line and result backend entry.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_PROBLEMS = 20
MAX_PROBLEM_CHARS = 1000


def capped(text: str, limit: int = MAX_PROBLEM_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def listing(items: Iterable[object], limit: int = MAX_PROBLEMS) -> str:
    """The first ``limit`` items as a list, and how many more there are."""
    items = list(items)
    return repr(items[:limit]) + (f" and {len(items) - limit:,} more" if len(items) > limit else "")


class LeadscoreError(Exception):
    """Base of every error leadscore raises on purpose."""


class InvalidRecordError(LeadscoreError):
    """A record failed validation. ``problems`` is a list of ``{"field", "problem"}`` objects, the
    shape batch and bulk results use too: the first ``MAX_PROBLEMS`` of them; ``total`` counts them
    all. ``[field, problem]`` pairs are accepted as input."""

    entity = "record"

    def __init__(self, record_id: str | None, problems: list[list[str]] | list[dict[str, str]], total: int | None = None) -> None:
        pairs = [(p["field"], p["problem"]) if isinstance(p, dict) else (p[0], p[1]) for p in problems]
        kept = [{"field": capped(str(f), 200), "problem": capped(str(p), 200)} for f, p in pairs[:MAX_PROBLEMS]]
        total = max(total or 0, len(problems))
        super().__init__(record_id, kept, total)
        self.record_id = record_id
        self.problems = kept
        self.total = total

    def __str__(self) -> str:
        detail = "; ".join(f"{p['field']}: {p['problem']}" for p in self.problems)
        more = self.total - len(self.problems)
        return f"{self.entity} {self.record_id!r} is invalid: {detail}" + (f"; and {more:,} more problems" if more > 0 else "")

    @property
    def fields(self) -> list[str]:
        return [p["field"] for p in self.problems]


class InvalidLeadError(InvalidRecordError):
    entity = "lead"

    def __init__(self, lead_id: str | None, problems: list[list[str]] | list[dict[str, str]], total: int | None = None) -> None:
        super().__init__(lead_id, problems, total)
        self.lead_id = lead_id


class InvalidPropertyError(InvalidRecordError):
    entity = "property"

    def __init__(self, property_id: str | None, problems: list[list[str]] | list[dict[str, str]], total: int | None = None) -> None:
        super().__init__(property_id, problems, total)
        self.property_id = property_id


class InvalidPayloadError(LeadscoreError):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem

    def __str__(self) -> str:
        return f"task message refused: {self.problem}"


class InvalidBatchError(LeadscoreError):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem

    def __str__(self) -> str:
        return f"invalid batch: {self.problem}"


class InvalidArgumentError(LeadscoreError):
    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(argument, problem)
        self.argument, self.problem = argument, problem

    def __str__(self) -> str:
        return f"argument {self.argument!r}: {self.problem}"


class SpecError(LeadscoreError):
    def __init__(self, model: str, problem: str) -> None:
        problem = capped(problem)
        super().__init__(model, problem)
        self.model, self.problem = model, problem

    def __str__(self) -> str:
        return f"spec of model {self.model!r}: {self.problem}"


class DatasetError(LeadscoreError):
    def __init__(self, model: str, problem: str) -> None:
        problem = capped(problem)
        super().__init__(model, problem)
        self.model, self.problem = model, problem

    def __str__(self) -> str:
        return f"training data for model {self.model!r}: {self.problem}"


class ModelNotFoundError(LeadscoreError):
    def __init__(self, model: str, version: str | None = None, problem: str = "") -> None:
        super().__init__(model, version, problem)
        self.model, self.version, self.problem = model, version, problem

    def __str__(self) -> str:
        what = f"model {self.model!r}" + (f" version {self.version!r}" if self.version else "")
        return f"{what} not found" + (f": {self.problem}" if self.problem else "")


class ArtifactIntegrityError(LeadscoreError):
    def __init__(self, model: str, version: str, filename: str, problem: str) -> None:
        super().__init__(model, version, filename, problem)
        self.model, self.version, self.filename, self.problem = model, version, filename, problem

    def __str__(self) -> str:
        return f"model {self.model!r} version {self.version!r}: {self.filename} {self.problem}; refusing to load it"


class ModelLoadError(LeadscoreError):
    def __init__(self, model: str, cause: str) -> None:
        super().__init__(model, cause)
        self.model, self.cause = model, cause

    def __str__(self) -> str:
        return f"model {self.model!r} failed to load ({self.cause})"


class RegistrationRefusedError(LeadscoreError):
    """Training produced a model that must not serve. ``failures`` say which gate, by how much."""

    def __init__(self, model: str, failures: list[str]) -> None:
        super().__init__(model, list(failures))
        self.model, self.failures = model, list(failures)

    def __str__(self) -> str:
        return f"model {self.model!r} not registered: " + "; ".join(self.failures)


class ExplanationUnavailableError(LeadscoreError):
    def __init__(self, model: str, version: str, problem: str) -> None:
        super().__init__(model, version, problem)
        self.model, self.version, self.problem = model, version, problem

    def __str__(self) -> str:
        return f"no explanation for model {self.model!r} version {self.version!r}: {self.problem}"


class LeadFileError(LeadscoreError):
    """A lead file that cannot be read at all; a bad row is reported per row instead."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(source, problem)
        self.source, self.problem = source, problem

    def __str__(self) -> str:
        return f"lead file {self.source}: {self.problem}"


class BulkJobError(LeadscoreError):
    """A bulk job cannot go on as asked; ``problem`` says why and what to run next."""

    def __init__(self, job_id: str, problem: str) -> None:
        super().__init__(job_id, problem)
        self.job_id, self.problem = job_id, problem

    def __str__(self) -> str:
        return f"bulk job {self.job_id}: {self.problem}"


class InvalidOutcomeError(LeadscoreError):
    def __init__(self, lead_id: str | None, problem: str) -> None:
        super().__init__(lead_id, problem)
        self.lead_id, self.problem = lead_id, problem

    def __str__(self) -> str:
        return f"outcome of lead {self.lead_id!r} is invalid: {self.problem}"


class RolloutError(LeadscoreError):
    def __init__(self, model: str, problem: str) -> None:
        super().__init__(model, problem)
        self.model, self.problem = model, problem

    def __str__(self) -> str:
        return f"rollout of model {self.model!r}: {self.problem}"


class ConcurrentChangeError(RolloutError):
    """Two hosts changed a model's rollout at once: this one lost, and changed nothing."""


class StoreUnavailableError(LeadscoreError):
    """``store`` is the store's URL without its password."""

    def __init__(self, store: str, problem: str) -> None:
        super().__init__(store, problem)
        self.store, self.problem = store, problem

    def __str__(self) -> str:
        return f"state store {self.store} is unavailable: {self.problem}"


class StoreSchemaError(LeadscoreError):
    def __init__(self, store: str, problem: str) -> None:
        super().__init__(store, problem)
        self.store, self.problem = store, problem

    def __str__(self) -> str:
        return f"state store {self.store}: {self.problem}"
