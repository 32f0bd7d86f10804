"""Property: validation never crashes, flags every malformed lead by field, and keeps valid ones."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_core.features import encode_leads
from ml_core.spec import load_spec
from tests.fuzz.strategies import malformed_leads, valid_leads
from tests.unit.helpers import MODEL, REPO_MODELS

SPEC = load_spec(REPO_MODELS, MODEL)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.data()), min_size=0, max_size=30), st.data())
def test_mixed_batches_score_the_valid_and_name_the_bad(kinds, data) -> None:  # type: ignore[no-untyped-def]
    leads = [data.draw(valid_leads(SPEC) if ok else malformed_leads(SPEC)) for ok, _ in kinds]
    encoded = encode_leads(SPEC, leads)
    bad = {e.index for e in encoded.errors}
    for i, (ok, _) in enumerate(kinds):
        assert (i in bad) != ok, f"lead {i} ({'valid' if ok else 'malformed'}) misjudged: {leads[i]!r:.200}"
    for error in encoded.errors:
        assert error.problems and all(isinstance(f, str) and len(f) <= 64 and p for f, p in error.problems)
    assert encoded.X.shape == (len(leads) - len(bad), len(SPEC.columns))
    assert np.isfinite(encoded.X).all()
    assert [int(i) for i in encoded.index] == [i for i in range(len(leads)) if i not in bad]
