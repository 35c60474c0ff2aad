"""`configure`: settings in, a resolver on the `cj-batching` OpenFeature domain out."""

from __future__ import annotations

from openfeature.provider import FeatureProvider

from cj_batching.flag_checks import batching_flag_checks
from cj_batching.guard import RolloutGuard
from cj_batching.metrics import BatchingMetrics
from cj_batching.metrics.flag_set import track_flag_set
from cj_batching.resolver import BatchingModeResolver
from cj_batching.settings import Settings
from flags import bind_provider, make_provider

__all__ = ["DOMAIN", "configure", "provider_for"]

DOMAIN = "cj-batching"


def provider_for(settings: Settings) -> FeatureProvider:
    """The flag provider `settings.FLAGS_PROVIDER` names, with its options."""
    token = settings.FLAGS_OFREP_TOKEN
    return make_provider(
        settings.FLAGS_PROVIDER,
        path=settings.FLAGS_FILE,
        poll_interval_seconds=settings.FLAGS_POLL_INTERVAL_SECONDS,
        checks=batching_flag_checks(settings),
        url=settings.FLAGS_OFREP_URL,
        token=None if token is None else token.get_secret_value(),
        host=settings.FLAGS_FLAGD_HOST,
        port=settings.FLAGS_FLAGD_PORT,
        # The resolver bounds each remote evaluation by FLAGS_EVALUATION_TIMEOUT_SECONDS.
        # The provider's own HTTP timeout / gRPC deadline only frees the worker thread:
        # at the same value the two race and a slow flag service is counted as GENERAL
        # or TIMEOUT by chance; with headroom it is always TIMEOUT.
        timeout_seconds=2 * settings.FLAGS_EVALUATION_TIMEOUT_SECONDS,
    )


def configure(
    settings: Settings | None = None,
    *,
    metrics: BatchingMetrics | None = None,
    domain: str = DOMAIN,
) -> BatchingModeResolver:
    """Build the provider `settings` name, bind it to `domain`, return a resolver on it,
    with a `RolloutGuard` reporting to `metrics` unless `GUARD_ENABLED` is false.

    Never raises because of flags: a provider that cannot start (say the flag file is
    missing) stays bound in ERROR and every resolution falls back to the env default
    until it recovers. Invalid settings raise `SettingsError`. With `metrics`, the
    resolutions are counted and the flag-set families (`cj_llm_batching_flags_info`...)
    follow the provider's events.
    """
    settings = Settings() if settings is None else settings
    client = bind_provider(provider_for(settings), domain)
    if metrics is not None:
        track_flag_set(client, metrics)
    guard = RolloutGuard(settings, metrics=metrics) if settings.GUARD_ENABLED else None
    return BatchingModeResolver(settings, client, metrics=metrics, guard=guard)
