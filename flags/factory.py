"""`make_provider`: one place that turns a provider kind and its options into a provider."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from openfeature.provider import FeatureProvider
from openfeature.provider.no_op_provider import NoOpProvider

from flags.file_provider import FlagdFileProvider
from flags.loading import DocumentCheck

__all__ = ["PROVIDER_KINDS", "ProviderKind", "bearer_token", "make_provider"]

ProviderKind = Literal["file", "none", "ofrep", "flagd"]
PROVIDER_KINDS: tuple[ProviderKind, ...] = ("file", "none", "ofrep", "flagd")
# RFC 6750's b64token: also what JWTs and API keys are made of. No quote, backslash or
# space, so escaping an echoed header (repr, JSON) can never change a token and hide it
# from redaction.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def bearer_token(token: str | None) -> str | None:
    """`token` without surrounding whitespace (one read from a secret file ends in a
    newline); None when blank. Anything but an RFC 6750 token (letters, digits and
    `- . _ ~ + /`, then `=` padding) is a ValueError that does not show the token (the
    HTTP client's own error would quote the whole header)."""
    if token is None or not token.strip():
        return None
    token = token.strip()
    if not _TOKEN.fullmatch(token):
        raise ValueError(
            "a bearer token is letters, digits and - . _ ~ + / with = padding at the end "
            "(RFC 6750), without inner whitespace"
        )
    return token


def make_provider(
    kind: ProviderKind,
    *,
    path: str | Path = "flags.yaml",
    poll_interval_seconds: float = 0.25,
    checks: Sequence[DocumentCheck] = (),
    url: str | None = None,
    token: str | None = None,
    host: str = "localhost",
    port: int = 8013,
    timeout_seconds: float = 0.5,
) -> FeatureProvider:
    """A provider of `kind`:

    - `file`: `path`, watched every `poll_interval_seconds`, documents checked by `checks`;
    - `none`: no flags; every evaluation returns the caller's default (reason DEFAULT);
    - `ofrep`: an OFREP server at `url` (flagd serves one), optional bearer `token`
      (see `bearer_token`), `timeout_seconds` per request (extra `[ofrep]`);
    - `flagd`: a flagd daemon over gRPC at `host`:`port`, `timeout_seconds` deadline
      (extra `[flagd]`).
    """
    if kind == "file":
        return FlagdFileProvider(path, poll_interval_seconds, checks=checks)
    if kind == "none":
        return NoOpProvider()
    if not 0 < timeout_seconds <= 60:
        raise ValueError(f"timeout_seconds: {timeout_seconds!r} must be > 0 and <= 60")
    if kind == "ofrep":
        return _ofrep(url, token, timeout_seconds)
    if kind == "flagd":
        return _flagd(host, port, timeout_seconds)
    raise ValueError(
        f"kind: {kind!r} is not a flag provider kind; allowed: {', '.join(PROVIDER_KINDS)}"
    )


def _ofrep(url: str | None, token: str | None, timeout_seconds: float) -> FeatureProvider:
    if not url or not url.startswith(("http://", "https://")):
        raise ValueError(f"url: {url!r} must be an http(s) URL of an OFREP server")
    token = bearer_token(token)
    module = _optional("openfeature.contrib.provider.ofrep", "ofrep")
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    provider = module.OFREPProvider(
        url, headers_factory=lambda: dict(headers), timeout=timeout_seconds
    )
    # OFREP lets a 200 omit `value` and `variant` to defer to the caller's default, and
    # flagd answers so when no rule matches a flag whose defaultVariant is null; the
    # provider reads `variant` unconditionally and turns that answer into GENERAL.
    provider.session.hooks["response"].append(_variant_is_optional)
    result: FeatureProvider = provider
    return result


def _variant_is_optional(response: Any, *_args: Any, **_kwargs: Any) -> None:
    """Give a 200 OFREP answer without `variant` an explicit `"variant": null`."""
    if response.status_code != 200:
        return
    try:
        data = response.json()
    except ValueError:
        return  # not JSON: the provider reports PARSE_ERROR itself
    if isinstance(data, dict) and "variant" not in data:
        response._content = json.dumps({**data, "variant": None}).encode()


def _flagd(host: str, port: int, timeout_seconds: float) -> FeatureProvider:
    if not host or not 0 < port < 65536:
        raise ValueError(f"host/port: {host!r}:{port!r} is not a flagd address")
    module = _optional("openfeature.contrib.provider.flagd", "flagd")
    config = _optional("openfeature.contrib.provider.flagd.config", "flagd")
    provider: FeatureProvider = module.FlagdProvider(
        host=host,
        port=port,
        deadline_ms=int(timeout_seconds * 1000),
        resolver_type=config.ResolverType.RPC,
    )
    return provider


def _optional(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(
            f"the {extra!r} flag provider needs the optional dependency: install "
            f"cj-batching[{extra}] (uv sync --extra {extra})"
        ) from None
