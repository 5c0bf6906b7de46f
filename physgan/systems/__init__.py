"""Physical systems. Each is a package exposing the same small interface, so the engine never
branches on a system's name:

    NAME: str                      the `system` attribute of its sample files
    CONDITIONS: tuple[str, ...]    per-sample condition fields (what a generator is conditioned on)
    DATA_FIELDS: tuple[str, ...]   per-sample fields every file of the system must hold
    read_foreign(path, kind, allow_pickle) -> Samples | None
                                   reader for layouts other than physgan HDF5 (None: not mine)
    SimulationConfig               dataclass of Monte Carlo settings (a recipe's [simulate] table)
    simulate_to_file(path, config, shard, force=, quiet=, root=None) -> int
                                   run the Monte Carlo into a sample file; returns the samples stored
    observables_report(samples) -> str
                                   per-condition observables with errors, next to exact values if known
    FidelityConfig, fidelity_report(reference, generated, fidelity, metrics) -> (text, results)
                                   a run's acceptance test (`physgan run`'s last stage)
    generative, validation         modules loaded on first use (they need torch): the GAN adapter and the
                                   plug-in of `physgan validate` (docs/architecture.md lists their contents)

Adding a system means adding a package here and its name to SYSTEMS.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from physgan.errors import UserError

# Foreign files are offered to each system's reader in this order: jets first, because its readers claim
# only exact layouts (e.g. EnergyFlow's X (n, M, 4) float with labels y), while Ising's .npz reader takes
# any array named X.
SYSTEMS = ("jets", "ising")


def get_system(name: str, where: str = "") -> ModuleType:
    if name not in SYSTEMS:
        prefix = f"{where}: " if where else ""
        raise UserError(f"{prefix}unknown system {name!r} (physgan knows: {', '.join(SYSTEMS)})")
    return importlib.import_module(f"physgan.systems.{name}")


def foreign_readers():
    for name in SYSTEMS:
        yield get_system(name).read_foreign
