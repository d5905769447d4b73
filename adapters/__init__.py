"""Adapter registry: built-ins by name, loaded lazily so a missing framework only skips its rows.

`BUILTINS` maps each built-in name to `"module:Class"` plus its arguments; nothing here imports a
framework. `load(name)` imports on demand; `resolve(spec)` also takes `[name=]pkg.module:Class`
for an adapter a user brings with `--adapter`.
"""

from __future__ import annotations

import difflib
import importlib
import re
from dataclasses import dataclass, field
from typing import Any

from adapters.base import Adapter, AdapterError, Capabilities, FitLog, Model


@dataclass(frozen=True)
class AdapterRef:
    """A named, not-yet-imported adapter: `target` is "module:attribute"."""

    name: str
    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    builtin: bool = True

    @property
    def framework(self) -> str:
        return self.name.split("-", 1)[0] if self.builtin else "user"

    def load(self) -> Adapter:
        """Import and instantiate; raises ImportError for a missing framework, AdapterError else."""
        module_name, _, attr = self.target.partition(":")
        module = importlib.import_module(module_name)
        try:
            factory = getattr(module, attr)
        except AttributeError:
            raise AdapterError(f"adapter {self.name!r}: module {module_name!r} has no attribute {attr!r}") from None
        adapter = factory(**self.kwargs)
        missing = [m for m in ("name", "build", "versions", "compute_path", "capabilities") if not hasattr(adapter, m)]
        if missing:
            raise AdapterError(
                f"adapter {self.name!r} ({self.target}) lacks {', '.join(missing)} of the Adapter protocol"
            )
        if not self.builtin:
            adapter.name = self.name
        return adapter


BUILTINS: dict[str, AdapterRef] = {
    f"{framework}-{cell}": AdapterRef(f"{framework}-{cell}", f"adapters.{framework}_rnn:{cls}", {"cell": cell})
    for framework, cls in (("keras", "KerasAdapter"), ("torch", "TorchAdapter"))
    for cell in ("lstm", "gru", "rnn")
}

_SPEC = re.compile(r"^(?:(?P<name>[A-Za-z0-9_.-]+)=)?(?P<module>[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_]\w*)$")


def resolve(spec: str) -> AdapterRef:
    """A built-in name, or `[name=]pkg.module:AdapterClass` for one the user brings."""
    if spec in BUILTINS:
        return BUILTINS[spec]
    match = _SPEC.match(spec)
    if match is None:
        close = difflib.get_close_matches(spec, BUILTINS, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise AdapterError(
            f"unknown adapter {spec!r}: {hint}use a built-in ({', '.join(BUILTINS)}) or [name=]pkg.module:AdapterClass"
        )
    name = match["name"] or match["attr"]
    if name in BUILTINS:
        raise AdapterError(f"adapter name {name!r} is taken by a built-in; give yours another with name=")
    return AdapterRef(name, f"{match['module']}:{match['attr']}", builtin=False)


__all__ = ["BUILTINS", "Adapter", "AdapterError", "AdapterRef", "Capabilities", "FitLog", "Model", "resolve"]
