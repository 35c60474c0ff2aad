"""Flag documents for tests, written exactly as in flags.yaml (flagd format)."""

from __future__ import annotations

from typing import Any

MODES = ("per_request", "serial_bundle", "provider_batch_api")


def mode_flag(
    targeting: Any = None,
    *,
    default_variant: str | None = None,
    state: str = "ENABLED",
    variants: dict[str, Any] | None = None,
) -> dict[str, Any]:
    flag: dict[str, Any] = {
        "state": state,
        "variants": variants or {mode: mode for mode in MODES},
        "defaultVariant": default_variant,
    }
    if targeting is not None:
        flag["targeting"] = targeting
    return flag


def allow_list_flag(*providers: str, state: str = "ENABLED") -> dict[str, Any]:
    return {
        "state": state,
        "variants": {"allowed": {"providers": list(providers)}},
        "defaultVariant": "allowed",
    }


def document(
    mode: dict[str, Any] | None = None,
    allow_list: dict[str, Any] | None = None,
    *,
    version: str | None = "test-1",
    evaluators: dict[str, Any] | None = None,
) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    if mode is not None:
        flags["llm-batching-mode"] = mode
    if allow_list is not None:
        flags["llm-batch-api-allowed-providers"] = allow_list
    doc: dict[str, Any] = {"flags": flags}
    if version is not None:
        doc["metadata"] = {"version": version}
    if evaluators:
        doc["$evaluators"] = evaluators
    return doc


def source_is(source: str) -> dict[str, Any]:
    return {"==": [{"var": "cj_source"}, source]}


def provider_is(provider: str) -> dict[str, Any]:
    return {"==": [{"var": "llm_provider"}, provider]}


def batching_document(batch_api_share: int = 20, *, version: str = "test-1") -> dict[str, Any]:
    """Per-source rules, a per-provider rule and a fractional ELS rollout."""
    return document(
        mode_flag(
            {
                "if": [
                    {"$ref": "on_mock"},
                    "per_request",
                    {"$ref": "from_eng5"},
                    "provider_batch_api",
                    {"$ref": "from_els"},
                    {
                        "fractional": [
                            ["provider_batch_api", batch_api_share],
                            ["serial_bundle", 100 - batch_api_share],
                        ]
                    },
                    None,
                ]
            }
        ),
        version=version,
        evaluators={
            "on_mock": provider_is("mock"),
            "from_eng5": source_is("eng5_runner"),
            "from_els": source_is("els"),
        },
    )
