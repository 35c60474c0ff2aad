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
    whole (raising `DocumentError` and keeping the old one when it is invalid), swaps it
    in and emits PROVIDER_CONFIGURATION_CHANGED with the changed flag keys.
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
        changed = self._install(check_document(document, source=self._name, checks=self._checks))
        version = self.flag_set_metadata.get("version")
        metadata = {} if version is None else {"version": version}
        self.emit_provider_configuration_changed(
            ProviderEventDetails(flags_changed=changed, metadata=metadata)
        )
        return changed
