"""`FlagdMemoryProvider`: flagd documents held in memory, for tests and embedding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openfeature.event import ProviderEventDetails

from flags.evaluator import FlagdEvaluatingProvider
from flags.loading import DocumentCheck, check_document

__all__ = ["FlagdMemoryProvider"]


class FlagdMemoryProvider(FlagdEvaluatingProvider):
    """The same evaluator as the file provider, over a document you pass in.

    Rules are written exactly as in `flags.yaml`. `update()` validates the new document
    whole (raising `DocumentError` and keeping the old one when it has an error), swaps it
    in and emits PROVIDER_CONFIGURATION_CHANGED with the changed flag keys; its warnings
    are in `warnings`.
    """

    def __init__(
        self,
        document: Mapping[str, Any],
        *,
        checks: Sequence[DocumentCheck] = (),
        name: str = "flagd-memory",
    ) -> None:
        super().__init__(name)
        self._checks = tuple(checks)
        self._install(check_document(document, source=name, checks=self._checks))

    def update(self, document: Mapping[str, Any]) -> list[str]:
        """Replace the document; return (and announce) the keys of the changed flags."""
        checked = check_document(document, source=self._name, checks=self._checks)
        changed = self._install(checked)
        metadata: dict[str, bool | str | int | float] = {"warnings": len(checked.warnings)}
        if checked.version is not None:
            metadata["version"] = checked.version
        self.emit_provider_configuration_changed(
            ProviderEventDetails(flags_changed=changed, metadata=metadata)
        )
        return changed
