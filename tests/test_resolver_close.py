"""`BatchingModeResolver.close()`: idempotent, in any order with the provider's shutdown and
`openfeature.api.shutdown()` (which drops every handler of every domain itself)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable

import pytest
from openfeature import api

from cj_batching import BatchContext, BatchingModeResolver
from flags import FlagdMemoryProvider, bind_provider

from .conftest import make_settings
from .documents import batching_document

STEPS = ("close", "close again", "provider shutdown", "api shutdown")
ORDERS = list(itertools.permutations(STEPS))


@pytest.mark.parametrize("order", ORDERS, ids=[" > ".join(order) for order in ORDERS])
def test_close_is_idempotent_in_every_order(order: tuple[str, ...]) -> None:
    provider = FlagdMemoryProvider(batching_document())
    resolver = BatchingModeResolver(
        make_settings(), bind_provider(provider, f"test-{uuid.uuid4().hex}")
    )
    assert resolver.resolve(BatchContext(1, "eng5_runner")).decided_by == "flag"
    actions: dict[str, Callable[[], None]] = {
        "close": resolver.close,
        "close again": resolver.close,
        "provider shutdown": provider.shutdown,
        "api shutdown": api.shutdown,
    }
    for step in order:
        actions[step]()  # none of them raises, whatever ran before
    resolver.close()
