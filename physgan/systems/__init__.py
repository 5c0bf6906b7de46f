"""Physical systems: the registry of the packages that implement physgan.systems.interface.System.

Systems register themselves: a system's package ends with `register(sys.modules[__name__])`. The registry
finds the built-in ones by importing every subpackage of physgan.systems, and third-party ones through the
entry-point group `physgan.systems` (each entry point names a system's package). Nothing lists systems by
name, so adding a system is adding its folder (docs/architecture.md, "Adding a system";
tests/test_third_system.py builds one inside the tests).
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from physgan.errors import UserError
from physgan.systems.interface import LAZY_MEMBERS, System, missing_members

ENTRY_POINTS = "physgan.systems"

_registry: dict[str, ModuleType] = {}
_discovered = False


def register(system: ModuleType) -> ModuleType:
    """Make a system known under its NAME; registering the same module again changes nothing.

    Checks the members a package defines itself (not `generative` and `validation`, which would load torch).
    """
    missing = missing_members(system, System, skip=LAZY_MEMBERS)
    if missing:
        raise TypeError(f"{system.__name__} is not a physgan system: it lacks {', '.join(missing)} "
                        "(physgan.systems.interface.System)")
    known = _registry.get(system.NAME)
    if known is not None and known is not system:
        raise ValueError(f"two systems are named {system.NAME!r}: {known.__name__} and {system.__name__}")
    _registry[system.NAME] = system
    return system


def unregister(name: str) -> None:
    """Forget a system (tests register systems of their own and remove them again)."""
    _registry.pop(name, None)


def lazy_submodules(package: str):
    """A module __getattr__ for a system's package that imports its LAZY_MEMBERS (`generative`,
    `validation`: they need torch) on first access, so that importing the package stays light."""

    def __getattr__(name: str):
        if name in LAZY_MEMBERS:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def _discover() -> None:
    """Import the built-in systems and the entry points' packages once: each registers itself."""
    global _discovered
    if _discovered:
        return
    import importlib.metadata

    for found in pkgutil.iter_modules(__path__, f"{__name__}."):
        if found.ispkg:
            importlib.import_module(found.name)
    for entry in importlib.metadata.entry_points(group=ENTRY_POINTS):
        register(entry.load())
    _discovered = True


def all_systems() -> list[ModuleType]:
    """Every registered system, by name."""
    _discover()
    return [_registry[name] for name in sorted(_registry)]


def system_names() -> list[str]:
    return [system.NAME for system in all_systems()]


def get_system(name: str, where: str = "") -> ModuleType:
    """The system called `name`; an unknown name is a UserError (prefixed by `where`, e.g. a file)."""
    _discover()
    if name not in _registry:
        prefix = f"{where}: " if where else ""
        raise UserError(f"{prefix}unknown system {name!r} (physgan knows: {', '.join(system_names())})")
    return _registry[name]


def foreign_readers():
    """Each system's read_foreign, in READER_ORDER."""
    for system in sorted(all_systems(), key=lambda s: (s.READER_ORDER, s.NAME)):
        yield system.read_foreign
