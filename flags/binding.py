"""Binding a provider to an OpenFeature domain without letting a bad start raise."""

from __future__ import annotations

import logging

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.provider import FeatureProvider

__all__ = ["bind_provider"]

_log = logging.getLogger(__name__)


def bind_provider(provider: FeatureProvider, domain: str) -> OpenFeatureClient:
    """Register `provider` for `domain`, wait for its initialisation, return the client.

    A provider whose start fails (say the flag file is missing) stays bound in status
    ERROR, where evaluations fall back to the caller's default until it recovers: a bad
    flag source must never stop the service that reads it.
    """
    try:
        api.set_provider_and_wait(provider, domain)
    except Exception as exc:
        _log.warning(
            "flag provider started in error; callers get their defaults until it recovers",
            extra={
                "flags_domain": domain,
                "flags_provider": provider.get_metadata().name,
                "error": str(exc),
            },
        )
    return api.get_client(domain)
