"""PEP 562 lazy exports: a package's public names imported from their modules on first use.

A package lists `name -> module` in a table and gets `__getattr__` and `__dir__` from
`lazy_exports`; its `if TYPE_CHECKING:` block imports the same names for type checkers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose globals are `namespace`.

    A name that is also the name of its submodule (`configure` in `cj_batching.configure`)
    cannot be lazy: importing the submodule sets the package attribute to the module. Such
    names are imported by the package itself, and are refused here.
    """
    shadowed = [name for name, module in exports.items() if module == f"{package}.{name}"]
    if shadowed:
        raise ValueError(
            f"{package}: {', '.join(shadowed)} share their module's name; import them in "
            "the package itself instead of listing them as lazy exports"
        )

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # the next access is a plain global lookup
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
