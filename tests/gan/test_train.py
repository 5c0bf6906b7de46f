"""Trainer, checkpoints, exact resume, 2-process data parallelism, sampler, and the run pipeline."""
import json
import os
import re
import shutil
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from physgan.cli import main
from physgan.errors import UserError
from physgan.gan.sample import sample_to_file
from physgan.gan.checkpoint import load as load_checkpoint
from physgan.gan.train import TrainConfig, Trainer, prepare_data, train
from physgan.io import open_samples
from physgan.systems import get_system

TINY_NET = {"channels": 8, "blocks": 2, "critic_channels": 8, "critic_blocks": 1, "z_dim": 4, "embed_dim": 8}


def tiny_config(**changes):
    settings = dict(steps=4, batch_size=16, group_size=4, n_critic=2, log_every=1, monitor_every=2,
                    monitor_samples=16, monitor_conditions=2, checkpoint_every=2, device="cpu", network=TINY_NET)
    return TrainConfig(**{**settings, **changes})


def parameters(state: dict) -> dict:
    return {f"{net}.{k}": v for net in ("generator", "generator_ema", "critic") for k, v in state[net].items()}


def test_checkpoints_are_plain_and_resume_is_exact(small_ising_file, tmp_path):
    straight = train(small_ising_file, tmp_path / "a", tiny_config(steps=4), quiet=True)
    train(small_ising_file, tmp_path / "b", tiny_config(steps=2), quiet=True)
    resumed = train(small_ising_file, tmp_path / "b", tiny_config(steps=4), resume=True, quiet=True)
    expected, got = parameters(straight.state()), parameters(resumed.state())
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0, msg=name)
    checkpoint = torch.load(tmp_path / "a/checkpoints/last.pt", weights_only=True)
    assert checkpoint["step"] == 4 and checkpoint["system"] == "ising"
    assert (tmp_path / "a/checkpoints/best.pt").exists()
    lines = [json.loads(line) for line in (tmp_path / "a/log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    assert {"wasserstein", "gradient_penalty", "generator_loss", "critic_loss", "time"} <= set(lines[0])
    assert set(lines[1]["monitor"]) == {"score", "features", "conditions"}


def test_a_second_run_into_the_same_directory_needs_resume(small_ising_file, tmp_path):
    train(small_ising_file, tmp_path / "r", tiny_config(steps=1), quiet=True)
    with pytest.raises(UserError, match="--resume"):
        train(small_ising_file, tmp_path / "r", tiny_config(steps=1), quiet=True)
    with pytest.raises(UserError, match="configuration differs"):
        train(small_ising_file, tmp_path / "r", tiny_config(steps=2, lr_critic=1e-3), resume=True, quiet=True)


def _record_gradients(trainer_class, sink: list):
    """Wrap Trainer._average_gradients to keep a copy of every averaged gradient."""
    original = trainer_class._average_gradients

    def recording(self, model):
        original(self, model)
        sink.append([p.grad.detach().clone() for p in model.parameters() if p.grad is not None])

    return recording


def _ddp_worker(rank, world, port, data_path, out_dir, changes):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    gradients = []
    Trainer._average_gradients = _record_gradients(Trainer, gradients)
    train(data_path, out_dir, tiny_config(steps=2, ema=0.0, **changes), quiet=True)
    if rank == 0:
        torch.save(gradients, f"{out_dir}/gradients.pt")
    assert not torch.distributed.is_initialized()  # train() started the process group and ended it


HIERARCHICAL = dict(hierarchical=["abs_m"], condition_anchors=["e", "abs_m"],
                    network={**TINY_NET, "impose_magnetisation": True, "noise_scales": 2, "noise_gates": True,
                             "scale_invariant": True, "critic_projection": True})


@pytest.mark.parametrize("changes", [{}, HIERARCHICAL], ids=["plain", "hierarchical"])  # the presets' design
def test_two_processes_take_the_same_step_as_one(small_ising_file, tmp_path, monkeypatch, changes):
    """Each rank sees half of the global batch; the all-reduced gradients must be those of one process
    seeing all of it, and so must the parameters after the steps. Where a gradient cancels to rounding
    level (e.g. a critic bias: mean over real minus mean over fake), Adam's first step, lr * g / |g|,
    turns rounding noise into a full step of either sign, so parameters are compared elsewhere."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(small_ising_file), str(tmp_path / "ddp"), changes), nprocs=2, join=True)
    single_gradients = []
    monkeypatch.setattr(Trainer, "_average_gradients", _record_gradients(Trainer, single_gradients))
    single = train(small_ising_file, tmp_path / "one", tiny_config(steps=2, ema=0.0, **changes), quiet=True)
    ddp_gradients = torch.load(tmp_path / "ddp/gradients.pt", weights_only=True)
    assert len(ddp_gradients) == len(single_gradients) == 2 * (2 + 1)  # steps x (n_critic + generator)
    rounding_level = []
    for one, two in zip(single_gradients, ddp_gradients):
        # a gradient that cancels to rounding level as a whole (hierarchical: a bias in the generator's last
        # block, a constant added to the logits, which the threshold at the imposed |m| removes) is judged
        # at the step's scale
        floor = 1e-6 * max(float(g.abs().max()) for g in one)
        for g1, g2 in zip(one, two):
            scale = g1.abs().max()
            # later steps inherit the rounding-level differences above at the 1e-4 level; a bug
            # (no averaging, wrong slice) shows up at order 1
            torch.testing.assert_close(g2, g1, rtol=1e-3, atol=max(1e-4 * float(scale), floor))
        rounding_level.append([g.abs() < max(1e-5 * float(g.abs().max()), floor) for g in one])
    expected, got = parameters(single.state()), parameters(load_checkpoint(tmp_path / "ddp/checkpoints/last.pt"))
    tiny = {f"{net}.{name}": torch.zeros_like(p, dtype=torch.bool)
            for net, model in (("generator", single.G), ("critic", single.D)) for name, p in model.named_parameters()}
    for step_masks, (net, model) in zip(rounding_level, [("critic", single.D)] * 2 + [("generator", single.G)]
                                         + [("critic", single.D)] * 2 + [("generator", single.G)]):
        for (name, _), mask in zip(model.named_parameters(), step_masks):
            tiny[f"{net}.{name}"] |= mask
    for name, value in expected.items():
        if name in tiny:
            keep = ~tiny[name]
            torch.testing.assert_close(got[name][keep], value[keep], rtol=1e-3, atol=1e-5, msg=name)
    assert sum(int((~m).sum()) for m in tiny.values()) > 0.95 * sum(m.numel() for m in tiny.values())


def test_sampler_writes_the_monte_carlo_format(small_ising_file, tmp_path):
    train(small_ising_file, tmp_path / "s", tiny_config(steps=2), quiet=True)
    sample_to_file(tmp_path / "s/checkpoints/best.pt", tmp_path / "gen.h5", {"T": "1.8,2.5", "n": 30}, batch_size=16,
                   device="cpu", quiet=True)
    generated = open_samples(tmp_path / "gen.h5")
    assert (generated.system, generated.source, generated.n) == ("ising", "gan", 60)
    spins = generated.read("spins")
    assert spins.dtype == np.int8 and spins.shape == (60, 8, 8) and set(np.unique(spins)) <= {-1, 1}
    np.testing.assert_array_equal(generated.read("T"), np.repeat(np.float32([1.8, 2.5]), 30))
    assert generated.provenance["config"]["step"] == 2


class ArbitraryObject:
    """A pickled object: weights_only loading must refuse it rather than run its class's code."""


def test_bad_checkpoints_are_user_errors(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")

    torch.save({"format": "physgan-checkpoint-1", "x": ArbitraryObject()}, tmp_path / "pickle.pt")
    for name, message in (("missing.pt", "no such checkpoint"), ("foreign.pt", "not a physgan checkpoint"),
                          ("garbage.pt", "not a readable"), ("pickle.pt", "not a readable")):
        with pytest.raises(UserError, match=message):
            load_checkpoint(tmp_path / name)


def tiny_run_preset(tmp_path):
    preset = tmp_path / "tiny.toml"
    preset.write_text(f"""system = "ising"
[simulate_train]
L = 8
temps = [1.8, 2.4, 3.0]
n_per_temp = 64
chains = 16
[simulate_test]
L = 8
temps = [1.8, 2.1, 3.0]
n_per_temp = 32
chains = 16
seed = 99
[train]
steps = 2
batch_size = 16
group_size = 4
n_critic = 1
monitor_every = 1
monitor_samples = 8
device = "cpu"
network = {json.dumps(TINY_NET).replace(':', ' =').replace('"', '')}
[sample]
n_per_condition = 20
[fidelity]
relative = {{e = 0.02, abs_m = 0.03}}
""")
    return preset


def verdict_status(run) -> int:
    """The exit status `physgan run` owes the verdict it wrote: 0 on PASS, 1 on FAIL."""
    return 0 if json.loads((run / "timings.json").read_text())["verdict"] == "pass" else 1


def test_tiny_run_end_to_end(tmp_path, capsys):
    preset = tiny_run_preset(tmp_path)
    code = main(["run", "ising", "--preset", str(preset), "--out", str(tmp_path / "run"), "--quiet"])
    assert code == verdict_status(tmp_path / "run")  # a few steps of training: the verdict may go either way
    for path in ("config.toml", "data/train.h5", "data/test.h5", "checkpoints/last.pt", "checkpoints/best.pt",
                 "log.jsonl", "samples/generated.h5", "timings.json", "report/plots/training.png",
                 "report/histograms.h5"):
        assert (tmp_path / "run" / path).exists(), path
    generated = open_samples(tmp_path / "run/samples/generated.h5")
    assert sorted(np.unique(generated.read("T")).tolist()) == pytest.approx([1.8, 2.1, 3.0])
    speed = json.loads((tmp_path / "run/timings.json").read_text())["speed"]  # the report states the speed-up
    assert speed["monte_carlo"]["n"] == 3 * 64 + 3 * 32 and speed["generator"]["n"] == 3 * 20
    assert speed["speed_up"] == pytest.approx(speed["generator"]["per_second"] / speed["monte_carlo"]["per_second"])
    assert "speed-up" in (tmp_path / "run/report/report.html").read_text()
    assert main(["run", "ising", "--preset", str(preset), "--out", str(tmp_path / "run")]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_training_reports_progress_in_a_log_and_sampling_warns_through_logging(small_ising_file, tmp_path, capsys,
                                                                                 monkeypatch):
    """Outside a terminal (here stderr is pytest's capture) training prints a line per interval with the
    latest losses and monitor score; a request outside the training range is a one-line warning, --quiet or not."""
    from physgan import progress

    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)  # a line every step
    preset, run = tiny_run_preset(tmp_path), tmp_path / "t"
    assert main(["train", "--data", str(small_ising_file), "--out", str(run), "--preset", str(preset)]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert "trained 2 steps" in out and len(lines) == 3  # steps 1 and 2, then the stage's end
    assert re.fullmatch(r"training: 1/2 \(50 %\), \d+ s, ETA \d+ s; critic_loss \S+, generator_loss \S+, "
                        r"wasserstein \S+, score \S+", lines[0]), lines[0]
    assert lines[2].startswith("training: 2/2 (100 %)") and ", done; " in lines[2]
    score = json.loads((run / "log.jsonl").read_text().splitlines()[-1])["monitor"]["score"]
    assert lines[1].endswith(f"score {score:.4g}")  # the latest monitor's
    sample = ["sample", "--checkpoint", str(run / "checkpoints/best.pt"), "--T", "2.0,4.5", "--n", "4", "--out"]
    assert main([*sample, str(tmp_path / "g.h5")]) == 0
    warning, *lines = capsys.readouterr().err.splitlines()
    assert warning.startswith("physgan: warning: 1 requested condition(s) lie outside the training range ")
    assert [line.split(",")[0] for line in lines] == ["sampling: 8/8 (100 %)"] * 2
    assert main([*sample, str(tmp_path / "g_quiet.h5"), "--quiet"]) == 0
    assert capsys.readouterr().err == warning + "\n"  # the warning still, its line alone
    assert main(["train", "--data", str(small_ising_file), "--out", str(tmp_path / "q"), "--preset", str(preset),
                 "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "{data}", "--out", "{tmp}/x", "--preset", "nope"], "unknown preset"),
    (["train", "--data", "{data}", "--out", "{tmp}/x", "--set", "stepz=3"], "unknown train key 'stepz'"),
    (["train", "--data", "{data}", "--out", "{tmp}/x", "--set", "loss=hinge"], "loss must be one of"),
    (["train", "--data", "{data}", "--out", "{tmp}/x", "--set", "lr_decay=2"], "lr_decay must be in"),
    (["train", "--data", "{tmp}/missing.h5", "--out", "{tmp}/x"], "no such file"),
    (["sample", "--checkpoint", "{tmp}/missing.pt", "--T", "2", "--out", "{tmp}/g.h5"], "no such checkpoint"),
    (["run", "ising", "--preset", "nope", "--out", "{tmp}/r"], "unknown preset"),
    (["run", "ising", "--out", "{tmp}/r", "--set", "train.network.generatr=unet"], "unknown network key"),
    (["run", "ising", "--out", "{tmp}/r", "--set", 'train.hierarchical=["m2"]'], "not one of the ising physics features"),
    (["run", "jets", "--out", "{tmp}/r", "--set", 'train.condition_anchors=["mass"]'], "one continuous condition"),
    (["run", "jets", "--out", "{tmp}/r", "--set", 'sample.adhere=["pt"]'], "'pt' is not among train.hierarchical"),
    (["run", "ising", "--out", "{tmp}/r", "--set", "sample.adherence_steps=-1"], "adherence_steps at least 0"),
])
def test_bad_training_and_sampling_inputs(small_ising_file, tmp_path, capsys, args, message):
    args = [a.format(data=small_ising_file, tmp=tmp_path) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("physgan: error:") and message in err and err.count("\n") == 1
    assert not (tmp_path / "g.h5").exists() and not (tmp_path / "r/data").exists()  # nothing simulated


def test_monitor_conditions_come_from_the_training_data(small_ising_file, tmp_path):
    system = get_system("ising")
    data = prepare_data(system, open_samples(small_ising_file))
    assert data.group_cond[:, 0].tolist() == pytest.approx([1.8, 2.269, 3.0])
    assert data.target_mean.shape == (3, 2)  # (conditions, features e and |m|)
    trainer = Trainer(system, data, tiny_config(), tmp_path)
    report = trainer.monitor()
    assert len(report["conditions"]) == 2 and report["score"] > 0


def test_monitor_score_weights_features_as_the_matching_does(small_ising_file, tmp_path):
    """The score is the weighted mean of the features' squared pulls: all weight on e plus all weight on
    |m| (weights normalised to mean 1) adds up to twice the equally weighted score (same monitor draw)."""
    system = get_system("ising")
    trainer = Trainer(system, prepare_data(system, open_samples(small_ising_file)), tiny_config(), tmp_path)
    equal = trainer.monitor()["score"]
    scores = []
    for weights in ([2.0, 0.0], [0.0, 2.0]):
        trainer.feature_weights = torch.tensor(weights)
        scores.append(trainer.monitor()["score"])
    assert scores[0] != pytest.approx(scores[1])
    assert sum(scores) == pytest.approx(2 * equal, rel=1e-5)


def test_a_stopped_run_resumes_with_its_monte_carlo_and_checkpoint(tmp_path, capsys):
    preset, run = tiny_run_preset(tmp_path), tmp_path / "run"
    assert main(["run", "ising", "--preset", str(preset), "--out", str(run), "--quiet"]) in (0, 1)
    kept = {name: (run / "data" / name).stat().st_mtime_ns for name in ("train.h5", "test.h5")}
    step = load_checkpoint(run / "checkpoints/last.pt")["step"]
    for name in ("samples", "report"):  # as if the run had stopped after training
        shutil.rmtree(run / name)
    (run / "timings.json").unlink()
    assert main(["run", "ising", "--preset", str(preset), "--out", str(run), "--quiet", "--resume"]) == verdict_status(run)
    assert {name: (run / "data" / name).stat().st_mtime_ns for name in kept} == kept  # not simulated again
    assert load_checkpoint(run / "checkpoints/last.pt")["step"] == step
    timings = json.loads((run / "timings.json").read_text())
    assert {"simulate train", "simulate test", "train", "sample"} <= set(timings["timings_s"])
    assert (run / "report/report.html").exists()
    capsys.readouterr()
    assert main(["run", "ising", "--preset", str(preset), "--out", str(run), "--resume",
                 "--set", "train.steps=3"]) == 2
    assert "settings differ" in capsys.readouterr().err
    assert main(["run", "ising", "--preset", str(preset), "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "holds no run" in capsys.readouterr().err


def test_hierarchical_runs_carry_their_summary_model_into_sampling(small_ising_file, tmp_path):
    config = tiny_config(steps=2, hierarchical=["abs_m", "e"])
    trainer = train(small_ising_file, tmp_path / "h", config, quiet=True)
    assert trainer.G.embed.net[0].in_features == 3  # conditioned on T, |m| and e
    checkpoint = load_checkpoint(tmp_path / "h/checkpoints/best.pt")
    summary = checkpoint["summary"]
    assert summary["features"] == ["abs_m", "e"] and summary["conditions"].tolist() == pytest.approx([1.8, 2.269, 3.0])
    assert torch.all(summary["first"].diff(dim=1) >= 0) and torch.all(summary["rest"].diff(dim=2) >= 0)
    line = json.loads((tmp_path / "h/log.jsonl").read_text().splitlines()[0])
    assert line["summary_matching"] > 0
    sample_to_file(tmp_path / "h/checkpoints/best.pt", tmp_path / "gen.h5", {"T": "2.5", "n": 20}, batch_size=8,
                   device="cpu", quiet=True)
    assert open_samples(tmp_path / "gen.h5").n == 20


def test_the_summary_term_vanishes_when_every_sample_has_its_summary(small_ising_file, tmp_path):
    system = get_system("ising")
    data = prepare_data(system, open_samples(small_ising_file))
    trainer = Trainer(system, data, tiny_config(hierarchical=["abs_m"]), tmp_path)
    real, _, _, groups, _, summary = trainer._inputs(torch.Generator().manual_seed(0))
    features = system.generative.physics_features
    assert trainer._summary_matching(features(real), groups, summary).item() == 0
    flipped = real.clone()
    flipped[0, 0, 0, 0] *= -1  # one spin of one lattice: |m| moves by 2/64
    expected = (2 / 64 / data.target_std[groups[0], 1]) ** 2 / len(real)
    assert trainer._summary_matching(features(flipped), groups, summary).item() == pytest.approx(float(expected),
                                                                                                rel=1e-4)


def test_anchors_give_the_networks_each_training_temperature_s_mean_features(small_ising_file, tmp_path):
    data = prepare_data(get_system("ising"), open_samples(small_ising_file))
    trainer = Trainer(get_system("ising"), data, tiny_config(condition_anchors=["e", "abs_m"]), tmp_path)
    assert trainer.conditioning.n_inputs == 3
    got = trainer.conditioning.real(data.group_cond)[:, 1:]
    low, high = data.target_mean.min(0).values, data.target_mean.max(0).values
    torch.testing.assert_close(got, 2 * (data.target_mean - low) / (high - low) - 1)
    trainer.train_step()  # the networks take the extra inputs


def test_matching_weights_are_the_systems_own_normalised_to_mean_one():
    """Ising weighs its two features equally; jets' spectrum points together weigh as much as the mass."""
    from physgan.gan.train import matching_weights

    ising, jets = get_system("ising"), get_system("jets")
    torch.testing.assert_close(matching_weights(ising), torch.ones(2))
    names, weights = jets.generative.FEATURE_NAMES, matching_weights(jets)
    spectrum = [i for i, name in enumerate(names) if name.startswith("pixels_above")]
    torch.testing.assert_close(weights[spectrum].sum(), weights[names.index("mass")])
    assert weights.mean().item() == pytest.approx(1.0)


def test_hierarchical_summaries_must_be_physics_features():
    from physgan.gan.train import feature_indices, summary_indices

    ising = get_system("ising")
    assert summary_indices(ising, tiny_config(hierarchical=["abs_m", "e"])) == [1, 0]
    assert summary_indices(ising, tiny_config()) == []
    # jets: the summaries' model runs along the pT within each class; anchors have no such model
    assert summary_indices(get_system("jets"), tiny_config(hierarchical=["mass", "pt_d"])) == [0, 4]
    with pytest.raises(UserError, match="one continuous condition"):
        feature_indices(get_system("jets"), ["mass"], "condition_anchors")
    for names, message in ((["m2"], "not one of the ising physics features"), (["e", "e"], "named twice")):
        with pytest.raises(UserError, match=message):
            summary_indices(ising, tiny_config(hierarchical=names))
        with pytest.raises(UserError, match=f"condition_anchors: .*{message}"):
            feature_indices(ising, names, "condition_anchors")


def test_monitor_pulls_use_the_training_spread_even_for_a_collapsed_generator(small_ising_file, tmp_path):
    """A generator that makes one lattice again and again has no spread of its own: its pulls are
    (its feature - training mean) / (training spread / sqrt(n)), finite, not divided by a zero spread."""
    system = get_system("ising")
    data = prepare_data(system, open_samples(small_ising_file))
    trainer = Trainer(system, data, tiny_config(), tmp_path)
    lattice = torch.ones(1, 1, 8, 8)  # all up: e = -2, |m| = 1 at every condition
    trainer.G_ema.forward = lambda latent, cond: lattice.expand(len(cond), -1, -1, -1)
    report = trainer.monitor()
    features = system.generative.physics_features(lattice)[0]
    n, picks = trainer.config.monitor_samples, [0, 2]  # the two monitored conditions, lowest and highest T
    expected = torch.stack([(features - data.target_mean[g]) ** 2 / (data.target_std[g] ** 2 / n) for g in picks])
    assert report["score"] == pytest.approx(float(expected.mean()), rel=1e-5)


def test_a_request_at_the_edge_of_the_training_window_is_not_extrapolation(caplog):
    """Jets made in 250-300 GeV span 250.02-299.98 GeV: 250 and 300 GeV lie within 1 % of the range of its
    edges and are not warned about; 245 GeV (10 % out) is."""
    from physgan.gan.sample import _warn_outside_training_range

    checkpoint = {"condition_low": [0.0, 250.02], "condition_high": [1.0, 299.98]}
    with caplog.at_level("WARNING", logger="physgan"):
        _warn_outside_training_range(checkpoint, np.array([[0.0, 250.0], [1.0, 300.0]]))
        assert not caplog.records
        _warn_outside_training_range(checkpoint, np.array([[0.0, 245.0], [1.0, 300.0]]))
    assert [r.getMessage().split(" lie")[0] for r in caplog.records] == ["1 requested condition(s)"]
