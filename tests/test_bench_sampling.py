"""The sampling benchmark builds each Ising preset's generator with the condition inputs a trained
checkpoint of that preset has (hierarchical summaries, anchors), and runs it."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))
import bench_sampling as bench  # noqa: E402


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_the_benchmark_runs_each_ising_preset_s_generator(preset):
    generator, _, n_cond = bench.generator_for(8, preset, "cpu")
    assert n_cond == 4  # T, the |m| summary, the <e> and <|m|> anchors
    assert bench.generated_per_second(generator, n_cond, 8, 4, "cpu", seconds=0) > 0
    assert bench.generated_per_second(generator, n_cond, 8, 4, "cpu", seconds=0, T=2.0, sweeps=2) > 0


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_the_benchmark_runs_each_jets_preset_s_generator(preset):
    generator, n_cond = bench.jets_generator(preset, "cpu")
    assert n_cond == 5  # class, pT, then the summaries (mass, girth, prong distance)
    assert bench.jet_images_per_second(generator, n_cond, 8, "cpu", seconds=0, observables=True) > 0
    steps = bench.adherence_steps("jets", preset)
    assert steps == (60 if preset == "full" else 0)  # the full preset adheres to the drawn mass
    assert bench.jet_images_per_second(generator, n_cond, 8, "cpu", seconds=0, observables=True,
                                       adherence_steps=2) > 0
