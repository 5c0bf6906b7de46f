import tomllib
from dataclasses import dataclass, field

import pytest

from physgan.config import build, merge, parse_overrides, parse_temperatures, to_toml
from physgan.pipeline import preset_path_values
from physgan.errors import UserError
from physgan.systems.ising.mc import IsingMCConfig


def test_temperature_lists_and_grids():
    assert parse_temperatures("2.0,2.269,3.0") == [2.0, 2.269, 3.0]
    assert parse_temperatures("1.5:3.5:5") == pytest.approx([1.5, 2.0, 2.5, 3.0, 3.5])
    assert parse_temperatures("2.5:2.5:1") == [2.5]
    assert parse_temperatures([1, 2]) == [1.0, 2.0]


@pytest.mark.parametrize("bad", ["", "abc", "1,-2", "0", "1:2", "1:2:x", "1:2:0", "nan", "inf"])
def test_bad_temperatures_are_user_errors(bad):
    with pytest.raises(UserError):
        parse_temperatures(bad)


def test_build_checks_keys_and_types():
    config = build(IsingMCConfig, {"L": 8, "temps": "2:3:3", "chains": "4"})
    assert (config.L, config.temps, config.chains) == (8, [2.0, 2.5, 3.0], 4)
    with pytest.raises(UserError, match="unknown simulate key 'Lx'"):
        build(IsingMCConfig, {"Lx": 8}, where="simulate")
    with pytest.raises(UserError, match="not a whole number"):
        build(IsingMCConfig, {"L": 8.5})
    with pytest.raises(UserError, match="even L"):
        build(IsingMCConfig, {"L": 9, "algorithm": "metropolis"})
    with pytest.raises(UserError):
        build(IsingMCConfig, {"L": 1})


@dataclass
class Inner:
    rate: float = 1e-3
    flags: list[str] = field(default_factory=list)


@dataclass
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    on: bool = False


def test_overrides_nest_and_round_trip_through_toml():
    values = merge({"inner": {"rate": 0.5}}, parse_overrides(["inner.rate=2e-4", "on=true", "name=run one"]))
    config = build(Outer, values)
    assert config == Outer(name="run one", inner=Inner(rate=2e-4), on=True)
    from dataclasses import asdict

    assert build(Outer, tomllib.loads(to_toml(asdict(config)))) == config
    with pytest.raises(UserError, match="unknown"):
        build(Outer, parse_overrides(["inner.speed=3"]))
    with pytest.raises(UserError, match="key=value"):
        parse_overrides(["novalue"])


def test_unknown_preset_is_a_user_error():
    with pytest.raises(UserError, match="unknown preset 'no-such-preset' for ising \\(known: full, quick"):
        preset_path_values("ising", "no-such-preset")


@pytest.mark.parametrize("system, name", [("ising", "quick"), ("ising", "full"), ("jets", "quick"), ("jets", "full")])
def test_every_preset_round_trips_through_toml(system, name):
    # a run directory's config.toml is written with to_toml and must load again as a preset
    # (the full Ising preset has keys such as "abs_m@2.2:2.4" that TOML allows only quoted)
    values = preset_path_values(system, name)
    assert tomllib.loads(to_toml(values)) == values
