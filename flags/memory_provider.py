"""`FlagdMemoryProvider`: flagd documents held in memory, for tests and embedding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openfeature.event import ProviderEventDetails

from flags.evaluator import FlagdEvaluatingProvider
from flags.loading import CheckedDocument, DocumentCheck, check_document

__all__ = ["FlagdMemoryProvider"]


class FlagdMemoryProvider(FlagdEvaluatingProvider):
    """The same evaluator as the file provider, over a document you pass in.

    Rules are written exactly as in `flags.yaml`. A mapping is validated whole, `checks`
    included (raising `DocumentError` when it has an error); a `CheckedDocument` (from
    `check_document`, `parse_document` or `load_document`) was validated when it was made
    and is used as it is, with its warnings. `update()` takes either, keeps the old
    document when the new one is refused, swaps it in and emits
    PROVIDER_CONFIGURATION_CHANGED with the changed flag keys; its warnings are in
    `warnings`.
    """

    def __init__(
        self,
        document: Mapping[str, Any] | CheckedDocument,
        *,
        checks: Sequence[DocumentCheck] = (),
        name: str = "flagd-memory",
    ) -> None:
        super().__init__(name)
        self._checks = tuple(checks)
        self._install(self._checked(document))

    def update(self, document: Mapping[str, Any] | CheckedDocument) -> list[str]:
        """Replace the document; return (and announce) the keys of the changed flags."""
        checked = self._checked(document)
        changed = self._install(checked)
        metadata: dict[str, bool | str | int | float] = {"warnings": len(checked.warnings)}
        if checked.version is not None:
            metadata["version"] = checked.version
        self.emit_provider_configuration_changed(
            ProviderEventDetails(flags_changed=changed, metadata=metadata)
        )
        return changed

    def _checked(self, document: Mapping[str, Any] | CheckedDocument) -> CheckedDocument:
        if isinstance(document, CheckedDocument):
            return document  # validation (and the cost model) is the expensive part: once
        return check_document(document, source=self._name, checks=self._checks)
