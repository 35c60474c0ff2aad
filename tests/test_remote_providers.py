"""Remote flag providers through the real chain: OFREP against a loopback server started
by the test, flagd over gRPC against a closed port (no flagd daemon on test machines)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature.provider import ProviderStatus
from prometheus_client import CollectorRegistry

from cj_batching import (
    BatchContext,
    BatchingMetrics,
    BatchingModeResolver,
    LLMBatchingMode,
    LLMProviderType,
    Settings,
    configure,
)
from flags import evaluates_in_process, load_document, make_provider
from flags.testing import wait_until

from .conftest import ResolverFactory, make_settings
from .documents import allow_list_flag, document, mode_flag, source_is
from .helpers import flag_errors, loop_ticks
from .ofrep_server import (
    OFREPServer,
    Reply,
    evaluated,
    evaluation_error,
    flag_not_found,
    raw,
    running_ofrep_server,
    server_error,
    slow,
    too_many_requests,
    unauthorized,
)

BATCH_API = LLMBatchingMode.PROVIDER_BATCH_API
SERIAL = LLMBatchingMode.SERIAL_BUNDLE
PER_REQUEST = LLMBatchingMode.PER_REQUEST
MODE_KEY = "llm-batching-mode"
ALLOW_KEY = "llm-batch-api-allowed-providers"
FLAGS_YAML = Path(__file__).resolve().parent.parent / "flags.yaml"
TIMEOUT = 0.3  # FLAGS_EVALUATION_TIMEOUT_SECONDS in these tests
SLOW = 5.0  # a server delay far beyond it


def ctx(
    batch_id: int | str = 1,
    source: str = "bos",
    provider: str | None = "openai",
    request_type: str = "cj_comparison",
) -> BatchContext:
    return BatchContext(batch_id, source, provider, request_type, None)


def all_flag_errors(registry: CollectorRegistry) -> float:
    return sum(
        sample.value
        for metric in registry.collect()
        if metric.name == "cj_llm_batching_flag_errors"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ofrep() -> Iterator[OFREPServer]:
    with running_ofrep_server() as server:
        yield server
        assert server.errors == []


class Configured:
    """`configure()` on fresh domains; `shut(resolver)` closes the resolver and shuts its
    provider down (the fixture does so for every resolver still open)."""

    def __init__(self, metrics: BatchingMetrics) -> None:
        self._metrics = metrics
        self.open: list[BatchingModeResolver] = []

    def __call__(self, settings: Settings | None = None, **values: Any) -> BatchingModeResolver:
        values.setdefault("FLAGS_EVALUATION_TIMEOUT_SECONDS", TIMEOUT)
        settings = settings if settings is not None else make_settings(**values)
        resolver = configure(settings, metrics=self._metrics, domain=f"test-{uuid.uuid4().hex}")
        self.open.append(resolver)
        return resolver

    def shut(self, resolver: BatchingModeResolver) -> None:
        self.open.remove(resolver)
        resolver.close()
        resolver.client.provider.shutdown()


@pytest.fixture
def configured(metrics: BatchingMetrics) -> Iterator[Configured]:
    configured = Configured(metrics)
    yield configured
    for resolver in list(configured.open):
        configured.shut(resolver)


@pytest.fixture
def over_ofrep(configured: Configured, ofrep: OFREPServer) -> Callable[..., BatchingModeResolver]:
    def _resolver(**values: Any) -> BatchingModeResolver:
        return configured(FLAGS_PROVIDER="ofrep", FLAGS_OFREP_URL=ofrep.url, **values)

    return _resolver


# --- answers over OFREP ----------------------------------------------------------------


def test_served_variant_decides_with_the_served_metadata_version(
    over_ofrep: Callable[..., BatchingModeResolver],
    ofrep: OFREPServer,
    registry: CollectorRegistry,
) -> None:
    ofrep.answer(
        MODE_KEY,
        evaluated(
            "provider_batch_api",
            "treatment",
            reason="SPLIT",
            metadata={"flagSetId": "cj-batching", "version": "ofrep-7"},
        ),
    )
    ofrep.answer(ALLOW_KEY, evaluated({"providers": ["openai"]}, "allowed"))
    resolver = over_ofrep()
    assert not evaluates_in_process(resolver.client.provider)
    resolution = resolver.resolve(ctx(source="eng5_runner", provider="openai"))
    assert (resolution.mode, resolution.decided_by) == (BATCH_API, "flag")
    assert (resolution.flag_variant, resolution.flag_reason) == ("treatment", "SPLIT")
    assert resolution.flag_set_version == "ofrep-7"
    assert resolution.flag_error is None
    assert resolution.allowed_providers == (LLMProviderType.OPENAI,)
    assert resolution.allowed_providers_source == "flag"
    assert all_flag_errors(registry) == 0


def test_flags_yaml_served_over_ofrep_resolves_as_in_process(
    over_ofrep: Callable[..., BatchingModeResolver],
    ofrep: OFREPServer,
    make_resolver: ResolverFactory,
    registry: CollectorRegistry,
) -> None:
    """The same document gives the same answers remotely, including "no rule matched":
    flagd's OFREP then omits value and variant, which must end at the env default
    without a flag error, as in-process."""
    flags_yaml = load_document(FLAGS_YAML).document
    ofrep.serve_document(flags_yaml)
    remote = over_ofrep()
    local, _ = make_resolver(flags_yaml)
    batches = [
        ctx(batch_id, source, provider)
        for batch_id in range(25)
        for source, provider in [
            ("els", "openai"),
            ("bos", "openai"),
            ("eng5_runner", "anthropic"),
            ("eng5_runner", "google"),
            ("els", "mock"),
        ]
    ]
    for batch in batches:
        assert remote.resolve(batch) == local.resolve(batch), batch
    no_rule = remote.resolve(ctx(source="bos"))
    assert (no_rule.decided_by, no_rule.flag_reason, no_rule.flag_error) == (
        "default",
        "DEFAULT",
        None,
    )
    assert all_flag_errors(registry) == 0


def test_allow_list_served_over_ofrep_downgrades_anthropic(
    over_ofrep: Callable[..., BatchingModeResolver],
    ofrep: OFREPServer,
    registry: CollectorRegistry,
) -> None:
    ofrep.serve_document(
        document(
            mode_flag({"if": [source_is("eng5_runner"), "provider_batch_api", None]}),
            allow_list_flag("openai"),
        )
    )
    resolver = over_ofrep()
    anthropic = resolver.resolve(ctx(source="eng5_runner", provider="anthropic"))
    openai = resolver.resolve(ctx(source="eng5_runner", provider="openai"))
    assert (anthropic.requested_mode, anthropic.mode) == (BATCH_API, SERIAL)
    assert anthropic.guardrail_applied
    assert anthropic.allowed_providers == (LLMProviderType.OPENAI,)
    assert anthropic.allowed_providers_source == "flag"
    assert (openai.mode, openai.guardrail_applied) == (BATCH_API, False)
    assert len(ofrep.requests_for(ALLOW_KEY)) == 2
    downgrades = registry.get_sample_value(
        "cj_llm_batching_guardrail_downgrades_total", {"llm_provider": "anthropic"}
    )
    assert downgrades == 1


# --- every failure ends at the env default -----------------------------------------------


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        pytest.param(flag_not_found(MODE_KEY), "FLAG_NOT_FOUND", id="404-flag-not-found"),
        pytest.param(server_error(500), "GENERAL", id="500"),
        pytest.param(server_error(503, "try later"), "GENERAL", id="503"),
        pytest.param(evaluation_error("PARSE_ERROR"), "PARSE_ERROR", id="400-parse-error"),
        pytest.param(
            evaluation_error("TARGETING_KEY_MISSING"),
            "TARGETING_KEY_MISSING",
            id="400-targeting-key-missing",
        ),
        pytest.param(unauthorized(401), "GENERAL", id="401"),
        pytest.param(unauthorized(403), "GENERAL", id="403"),
        pytest.param(raw(200, b"<html>proxy page</html>"), "PARSE_ERROR", id="200-not-json"),
        pytest.param(evaluated(True, "on"), "TYPE_MISMATCH", id="200-wrong-type"),
        pytest.param(evaluated("provider_batchapi_TYPO", "turbo"), "INVALID_MODE", id="200-typo"),
    ],
)
def test_ofrep_failure_falls_back_to_env_default_and_is_counted(
    over_ofrep: Callable[..., BatchingModeResolver],
    ofrep: OFREPServer,
    registry: CollectorRegistry,
    reply: Reply,
    error: str,
) -> None:
    ofrep.answer(MODE_KEY, reply)
    resolver = over_ofrep(LLM_BATCHING_MODE="per_request")
    resolution = resolver.resolve(ctx())
    assert (resolution.mode, resolution.decided_by) == (PER_REQUEST, "default")
    assert resolution.flag_error == error
    assert flag_errors(registry, error) == 1
    assert all_flag_errors(registry) == 1
    assert ofrep.request_count == 1


def test_slow_ofrep_server_times_out_within_bounds(
    over_ofrep: Callable[..., BatchingModeResolver],
    ofrep: OFREPServer,
    registry: CollectorRegistry,
) -> None:
    ofrep.script(MODE_KEY, slow(SLOW))
    ofrep.answer(MODE_KEY, evaluated("per_request", "per_request"))
    resolver = over_ofrep()
    started = time.monotonic()
    resolution = resolver.resolve(ctx(1))
    elapsed = time.monotonic() - started
    assert ofrep.wait_for_requests(1, timeout=1)  # the server did get the request
    assert (resolution.mode, resolution.decided_by) == (SERIAL, "default")
    assert (resolution.flag_reason, resolution.flag_error) == ("ERROR", "TIMEOUT")
    assert TIMEOUT * 0.9 <= elapsed < 2  # bounded by the timeout, not the 5 s server
    assert flag_errors(registry, "TIMEOUT") == 1
    # The stuck request holds nobody else up: the next batch is answered at once.
    started = time.monotonic()
    assert resolver.resolve(ctx(2)).decided_by == "flag"
    assert time.monotonic() - started < TIMEOUT
    ofrep.release()


def test_unreachable_ofrep_server_falls_back_fast(
    configured: Configured, registry: CollectorRegistry
) -> None:
    resolver = configured(
        FLAGS_PROVIDER="ofrep",
        FLAGS_OFREP_URL=f"http://127.0.0.1:{closed_port()}",
        LLM_BATCHING_MODE="per_request",
    )
    started = time.monotonic()
    resolution = resolver.resolve(ctx())
    elapsed = time.monotonic() - started
    assert (resolution.mode, resolution.decided_by) == (PER_REQUEST, "default")
    assert resolution.flag_error == "GENERAL"  # connection refused
    assert elapsed < 2
    assert flag_errors(registry, "GENERAL") == 1


def test_rate_limited_ofrep_provider_pauses_until_retry_after(
    over_ofrep: Callable[..., BatchingModeResolver],
    ofrep: OFREPServer,
    registry: CollectorRegistry,
) -> None:
    ofrep.script(MODE_KEY, too_many_requests(retry_after="60"))
    ofrep.answer(MODE_KEY, evaluated("per_request", "per_request"))
    resolver = over_ofrep()
    first, second = resolver.resolve(ctx(1)), resolver.resolve(ctx(2))
    assert (first.decided_by, first.flag_error) == ("default", "GENERAL")
    assert (second.decided_by, second.flag_error) == ("default", "GENERAL")
    assert ofrep.request_count == 1  # the second batch was not even sent
    assert flag_errors(registry, "GENERAL") == 2


# --- what the provider sends --------------------------------------------------------------


def test_request_carries_batch_id_and_attributes_without_a_token(
    over_ofrep: Callable[..., BatchingModeResolver], ofrep: OFREPServer
) -> None:
    ofrep.answer(MODE_KEY, evaluated("per_request", "per_request"))
    resolver = over_ofrep()
    resolver.resolve(ctx(4242, source="els", provider="anthropic", request_type="cj_retry"))
    (request,) = ofrep.requests
    assert (request.method, request.path) == ("POST", f"/ofrep/v1/evaluate/flags/{MODE_KEY}")
    assert request.body == {
        "context": {
            "targetingKey": "4242",
            "cj_source": "els",
            "llm_provider": "anthropic",
            "cj_request_type": "cj_retry",
        }
    }
    assert "authorization" not in request.headers


def test_token_from_the_environment_is_sent_as_bearer_and_never_shown(
    configured: Configured, ofrep: OFREPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "s3cr3t-ofrep-token"
    for name, value in {
        "FLAGS_PROVIDER": "ofrep",
        "FLAGS_OFREP_URL": ofrep.url,
        "FLAGS_OFREP_TOKEN": token,
        "FLAGS_EVALUATION_TIMEOUT_SECONDS": str(TIMEOUT),
    }.items():
        monkeypatch.setenv(f"CJ_ASSESSMENT_SERVICE_{name}", value)
    settings = Settings(_env_file=None)
    assert token not in repr(settings)
    assert token not in str(settings)
    ofrep.answer(MODE_KEY, evaluated("per_request", "per_request"))
    resolver = configured(settings)
    assert resolver.resolve(ctx()).decided_by == "flag"
    (request,) = ofrep.requests
    assert request.headers["authorization"] == f"Bearer {token}"


# --- async and the cache -------------------------------------------------------------------


async def test_aresolve_on_a_slow_ofrep_server_keeps_the_event_loop_running(
    over_ofrep: Callable[..., BatchingModeResolver],
    ofrep: OFREPServer,
    registry: CollectorRegistry,
) -> None:
    ofrep.answer(MODE_KEY, slow(SLOW))
    resolver = over_ofrep()
    started = time.monotonic()
    async with loop_ticks() as ticks:
        resolution = await resolver.aresolve(ctx())
    elapsed = time.monotonic() - started
    ofrep.release()
    assert (resolution.decided_by, resolution.flag_error) == ("default", "TIMEOUT")
    assert elapsed < 2
    assert ticks.count >= 10  # ~30 expected in 0.3 s: the loop was never blocked for long
    assert flag_errors(registry, "TIMEOUT") == 1


async def test_cached_resolution_does_not_ask_the_server_again(
    over_ofrep: Callable[..., BatchingModeResolver], ofrep: OFREPServer
) -> None:
    ofrep.answer(MODE_KEY, evaluated("per_request", "per_request"))
    resolver = over_ofrep()
    first = resolver.resolve(ctx(9))
    assert ofrep.request_count == 1
    assert resolver.resolve(ctx(9)) is first
    assert await resolver.aresolve(ctx("9")) is first
    assert ofrep.request_count == 1
    resolver.resolve(ctx(10))
    assert ofrep.request_count == 2


def test_server_side_flag_edit_reaches_new_batches_at_once_cached_ones_after_ttl(
    over_ofrep: Callable[..., BatchingModeResolver], ofrep: OFREPServer
) -> None:
    """OFREP pushes no change events: nothing drops the cache when the server's flags
    change, so a batch already resolved keeps its answer for the cache TTL."""
    ofrep.answer(MODE_KEY, evaluated("per_request", "per_request"))
    resolver = over_ofrep(RESOLUTION_CACHE_TTL_SECONDS=30)
    assert resolver.resolve(ctx(1)).mode is PER_REQUEST
    ofrep.answer(MODE_KEY, evaluated("serial_bundle", "serial_bundle"))
    assert resolver.resolve(ctx(2)).mode is SERIAL
    assert resolver.resolve(ctx(1)).mode is PER_REQUEST  # cached until the TTL ends
    resolver.clear_cache()
    assert resolver.resolve(ctx(1)).mode is SERIAL


# --- make_provider arguments ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "options", "argument"),
    [
        pytest.param("ofrep", {"url": None}, "url", id="ofrep-no-url"),
        pytest.param("ofrep", {"url": "ftp://flags:8016"}, "url", id="ofrep-ftp-url"),
        pytest.param("ofrep", {"url": "localhost:8016"}, "url", id="ofrep-no-scheme"),
        pytest.param(
            "ofrep",
            {"url": "http://127.0.0.1:8016", "timeout_seconds": 0},
            "timeout_seconds",
            id="ofrep-zero-timeout",
        ),
        pytest.param("flagd", {"timeout_seconds": 61}, "timeout_seconds", id="flagd-timeout"),
        pytest.param("flagd", {"port": 0}, "port", id="flagd-port-0"),
        pytest.param("flagd", {"port": 65536}, "port", id="flagd-port-too-big"),
        pytest.param("flagd", {"host": ""}, "host", id="flagd-no-host"),
        pytest.param("consul", {}, "kind", id="unknown-kind"),
    ],
)
def test_make_provider_rejects_bad_arguments_by_name(
    kind: str, options: dict[str, Any], argument: str
) -> None:
    with pytest.raises(ValueError, match=argument) as raised:
        make_provider(kind, **options)  # type: ignore[arg-type]
    named = str(raised.value).split(":", 1)[0]  # "url: ...", "host/port: ...", "kind: ..."
    assert argument in named.split("/")


# --- flagd over gRPC (no daemon: a closed loopback port) -------------------------------


def _flagd_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("FlagdGrpc")]


def test_flagd_provider_is_built_with_the_given_address_and_deadline() -> None:
    port = closed_port()
    provider: Any = make_provider("flagd", host="127.0.0.1", port=port, timeout_seconds=0.25)
    try:
        assert (provider.config.host, provider.config.port) == ("127.0.0.1", port)
        assert provider.config.deadline_ms == 250
        assert provider.config.resolver.value == "rpc"
        assert not evaluates_in_process(provider)
    finally:
        provider.shutdown()


def test_unreachable_flagd_falls_back_within_bounds(
    configured: Configured, registry: CollectorRegistry
) -> None:
    started = time.monotonic()
    resolver = configured(
        FLAGS_PROVIDER="flagd",
        FLAGS_FLAGD_HOST="127.0.0.1",
        FLAGS_FLAGD_PORT=closed_port(),
        LLM_BATCHING_MODE="per_request",
    )
    startup = time.monotonic() - started
    # The provider waits for flagd up to its gRPC deadline (twice the evaluation
    # timeout), then stays bound in ERROR.
    assert startup < 2 * TIMEOUT + 1.5
    assert resolver.client.get_provider_status() is ProviderStatus.ERROR

    started = time.monotonic()
    resolution = resolver.resolve(ctx())
    elapsed = time.monotonic() - started
    assert (resolution.mode, resolution.decided_by) == (PER_REQUEST, "default")
    assert resolution.flag_error == "TIMEOUT"  # the RPC waits for a channel that never comes
    assert flag_errors(registry, "TIMEOUT") == 1
    assert TIMEOUT * 0.9 <= elapsed < 2

    configured.shut(resolver)
    wait_until(lambda: not _flagd_threads(), timeout=2, what="flagd's gRPC threads to end")


def test_kill_switch_served_by_flagd_ofrep_ends_at_env_default_as_flag_not_found(
    over_ofrep: Callable[..., BatchingModeResolver],
    ofrep: OFREPServer,
    registry: CollectorRegistry,
) -> None:
    """flagd's OFREP answers a DISABLED flag (the kill switch) with 404 FLAG_NOT_FOUND:
    the batch still gets the env default, but it is counted as a flag error."""
    ofrep.serve_document(document(mode_flag(default_variant="per_request", state="DISABLED")))
    resolution = over_ofrep().resolve(ctx())
    assert (resolution.mode, resolution.decided_by) == (SERIAL, "default")
    assert resolution.flag_error == "FLAG_NOT_FOUND"
    assert flag_errors(registry, "FLAG_NOT_FOUND") == 1
