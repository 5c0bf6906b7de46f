"""docs/api.md runs: its ```python blocks, in order, in one namespace, in a temporary directory. Blocks after
an `<!-- slow -->` line (the jets, which need Pythia) run only under the slow marker (make test-slow)."""
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
BLOCK = re.compile(r"(<!-- slow -->\s*\n)?```python\n(.*?)```", re.DOTALL)


def blocks() -> list[tuple[str, bool]]:
    """(code, slow) of every python block of the page, in order."""
    return [(match.group(2), match.group(1) is not None) for match in BLOCK.finditer(DOC.read_text())]


def run_blocks(tmp_path, monkeypatch, *, slow: bool) -> dict:
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "docs_api"}
    for number, (code, is_slow) in enumerate(blocks()):
        if is_slow and not slow:
            continue
        exec(compile(code, f"{DOC}:block{number + 1}", "exec"), namespace)
    return namespace


def test_the_page_has_the_examples_it_promises():
    found = blocks()
    fast = "\n".join(code for code, slow in found if not slow)
    slow = "\n".join(code for code, slow in found if slow)
    for call in ("physgan.simulate(", ".save(", "physgan.load_sample(", "physgan.train(", "physgan.load(",
                 "refine_sweeps=", "physgan.validate("):
        assert call in fast, call
    for call in ('physgan.simulate("jets"', 'cls="wprime"', "pt=(250, 300)"):
        assert call in slow, call


def test_the_ising_examples_run(tmp_path, monkeypatch, one_torch_thread):
    space = run_blocks(tmp_path, monkeypatch, slow=False)
    # what the page says happened, happened: the files, the sample sizes, the refinement, a verdict each
    assert (tmp_path / "ising_train.h5").is_file() and (tmp_path / "report/metrics.json").is_file()
    assert len(space["refined"]) == len(space["raw"]) == 3 * 256
    assert space["refined"].provenance["config"]["refine"]["sweeps"] == 8
    assert space["report"].verdict in ("pass", "fail") and space["report"].out == Path("report")


@pytest.mark.slow
def test_every_example_runs_the_jets_too(tmp_path, monkeypatch, one_torch_thread):
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    space = run_blocks(tmp_path, monkeypatch, slow=True)
    assert len(space["wprime"]) == 100 and set(space["wprime"]["signal"].tolist()) == {1}
    assert len(space["both"]) == 200 and 260 <= space["both"]["jet_pt"].min() <= space["both"]["jet_pt"].max() <= 280
