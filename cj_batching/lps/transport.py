"""One POST to LPS over httpx: the total deadline, the capped read, failures as answers."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import httpx

from cj_batching.lps.answers import Answer, classify_answer
from cj_batching.lps.errors import (
    CLIENT_ERROR,
    CONNECTION_ERROR,
    PROTOCOL_ERROR,
    TIMEOUT,
    redact,
)

__all__ = ["MAX_BODY_BYTES", "Transport", "pooled_http"]

MAX_BODY_BYTES: Final = 64 * 1024
"""The longest answer read; a 202 is under 300 bytes, so more is a protocol error."""


@dataclass(frozen=True, slots=True)
class Transport:
    """How one attempt reaches LPS: `post(body)` always returns an `Answer`.

    `timeout` is the total deadline of an attempt: connect, send and the whole answer
    (a server that drips one byte at a time cannot hold it longer). Error texts have
    `secrets` (and any bearer credential) redacted.
    """

    http: httpx.AsyncClient = field(repr=False)
    endpoint: str
    headers: Mapping[str, str] = field(repr=False)  # Authorization included
    timeout: float
    secrets: tuple[str, ...] = field(default=(), repr=False)
    # httpx's own per-phase timeouts only back up the total deadline.
    _http_timeout: httpx.Timeout = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_http_timeout", httpx.Timeout(self.timeout))

    async def post(self, body: bytes) -> Answer:
        """One POST under the total deadline, its answer read up to MAX_BODY_BYTES."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        scope = asyncio.timeout(None)

        async def arm(event: str, _info: object) -> None:
            # The deadline cancels only once the connection is up. httpcore 1.0.9 can lose
            # a request cancelled while its connection is being assigned or opened, and
            # stall others (encode/httpcore#1093; measured: 50-200 of 4 000 attempts never
            # reached the loopback server); until then httpx's own connect timeout, the
            # same budget, bounds the attempt (the gate keeps the pool from ever waiting).
            if event.endswith("send_request_headers.started"):
                scope.reschedule(deadline)

        request = self.http.build_request(
            "POST",
            self.endpoint,
            content=body,
            headers=self.headers,
            timeout=self._http_timeout,
            extensions={"trace": arm},
        )
        response: httpx.Response | None = None
        try:
            async with scope:
                response = await self.http.send(request, stream=True)
                content = await _read_capped(response)
        except (TimeoutError, httpx.TimeoutException):
            message = f"no complete answer within the {self.timeout:g} s deadline"
            return Answer("retryable", None, TIMEOUT, message)
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            return Answer("retryable", None, CONNECTION_ERROR, self._describe(exc))
        except httpx.DecodingError as exc:
            return Answer("final", None, PROTOCOL_ERROR, self._describe(exc))
        except httpx.HTTPError as exc:
            return Answer("final", None, CLIENT_ERROR, self._describe(exc))
        finally:
            # Closed outside the deadline: once the answer is read, returning the
            # connection to the pool must not turn it into a timeout (and a duplicate).
            if response is not None:
                await response.aclose()
        if content is None:
            message = f"protocol error: answer body over {MAX_BODY_BYTES} bytes, cut off"
            return Answer("final", response.status_code, PROTOCOL_ERROR, message)
        return classify_answer(
            response.status_code, response.headers, content, secrets=self.secrets
        )

    def _describe(self, exc: BaseException) -> str:
        text = str(exc).strip()
        described = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        return redact(described, self.secrets)


async def _read_capped(response: httpx.Response) -> bytes | None:
    """The answer's body, or None when it is longer than MAX_BODY_BYTES (unread rest)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def pooled_http(max_concurrency: int) -> httpx.AsyncClient:
    # The gate is the only limit on connections in use. A pool capped at the same number
    # made requests wait for connections still being torn down after a timeout (measured:
    # ~5 % of the fault suite's attempts timed out before reaching the server); uncapped,
    # it keeps as many idle connections as POSTs may be in flight.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=max_concurrency)
    # LPS is an internal service: HTTP(S)_PROXY / ALL_PROXY meant for the outside world
    # must not reroute it (the deployed aiohttp client ignores them too).
    return httpx.AsyncClient(limits=limits, trust_env=False)
