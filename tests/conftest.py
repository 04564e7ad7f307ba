"""Shared fixtures: small models are cached per (arrangement, seed, months) so tests stay fast."""
from __future__ import annotations

import functools

import pytest

from abm import ContractingModel

SMALL = 0.02  # ~6,400 people: enough for structure and money, fast on 2 cores


@functools.lru_cache(maxsize=32)
def _run(arrangement: str, seed: int, months: int, scale: float = SMALL, **kw):
    m = ContractingModel(arrangement, rng=seed, population_scale=scale, **dict(kw))
    for _ in range(months):
        m.step()
    return m


@pytest.fixture
def run_model():
    """run_model(arrangement, seed, months, scale=0.02) -> a stepped model (cached; do not mutate)."""
    return _run
