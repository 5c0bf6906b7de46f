"""The example notebooks (examples/*.ipynb) run top to bottom without a cell error, each in a fresh Jupyter
kernel of this interpreter, in a temporary directory (slow: `make test-slow`). The notebooks are stored
without outputs, which the fast test checks with json alone.

nbclient, nbformat and ipykernel come with the `test` extra; they are imported inside the tests, so that
collecting the fast suite does not need them."""
import json
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = ("ising.ipynb", "jets.ipynb")
CELL_TIMEOUT_S = 900


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_are_stored_without_outputs(name):
    notebook = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code, f"{name} has no code cells"
    dirty = [number for number, cell in enumerate(notebook["cells"])
             if cell["cell_type"] == "code" and (cell["outputs"] or cell["execution_count"] is not None)]
    assert not dirty, (f"{name}: cells {dirty} hold outputs; clear them before saving "
                       f"(jupyter nbconvert --clear-output --inplace examples/{name})")


def this_interpreters_kernel(folder: Path) -> str:
    """A kernelspec, in `folder` (to be put first on JUPYTER_PATH), that runs this very interpreter: the
    notebooks must import this checkout's physgan, not whatever a user-wide "python3" kernel points at."""
    name = "physgan-notebook-test"
    spec = folder / "kernels" / name
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "physgan test kernel", "language": "python"}))
    return name


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, tmp_path, monkeypatch):
    if name == "jets.ipynb":
        for module in ("pythia8mc", "fastjet"):
            pytest.importorskip(module, reason=f"the jets notebook runs the jets Monte Carlo, which needs {module} "
                                               "(pip install 'physgan[jets]')")
    nbformat = pytest.importorskip("nbformat", reason="the notebook tests need the test extra: nbformat")
    nbclient = pytest.importorskip("nbclient", reason="the notebook tests need the test extra: nbclient")
    pytest.importorskip("ipykernel", reason="the notebook tests need the test extra: ipykernel")

    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    kernel = this_interpreters_kernel(tmp_path / "jupyter")
    work = tmp_path / "run"
    work.mkdir()
    monkeypatch.setenv("TMPDIR", str(work))  # the notebook's tempfile.mkdtemp lands here, and goes with tmp_path

    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name=kernel, timeout=CELL_TIMEOUT_S,
                                     resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any cell error

    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert not errors
    # every code cell ran, and the plots were drawn
    assert all(cell.execution_count for cell in notebook.cells if cell.cell_type == "code")
    assert any("image/png" in output.get("data", {}) for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.outputs)
    # the notebook wrote its files into the temporary directory it made (tempfile.mkdtemp, here under work)
    made = list(work.glob(f"physgan-{Path(name).stem}-*/run/checkpoints/best.pt"))
    assert len(made) == 1, f"expected one run directory under {work}, found: {[p.name for p in work.iterdir()]}"
