"""Figures reach the notebook as images, once each.

coursekit's figures are ``matplotlib.figure.Figure`` objects made without pyplot; a kernel shows them as image/png
whether or not the matplotlib-inline backend registered its formatters (``MPLBACKEND=Agg`` stops it from doing so).
``plt.show()`` needs the inline backend, which is why notebook kernels run without ``MPLBACKEND=Agg``.
The live loss plot of ``NotebookProgress`` leaves its final curves as an image in the executed notebook.
"""
from __future__ import annotations

import base64
import hashlib
from types import SimpleNamespace

import nbformat

from coursekit._figure import DisplayFigure
from coursekit.plots import plot_loss_curves, plot_runs, plot_sweep

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE_TIMEOUT_S = 300

CURVES = "[(1, 3.0), (2, 2.0), (3, 1.5)], [(0, 3.2), (3, 1.8)]"


def _execute(cells: list[str], tmp_path, monkeypatch, mplbackend: str | None):
    """Run the cells in a fresh python3 kernel whose environment has ``MPLBACKEND=mplbackend`` (None: unset)."""
    from nbclient import NotebookClient

    if mplbackend is None:
        monkeypatch.delenv("MPLBACKEND", raising=False)
    else:
        monkeypatch.setenv("MPLBACKEND", mplbackend)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, kernel_name="python3", timeout=IMAGE_TIMEOUT_S,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    return nbformat.read(path, as_version=4)  # what a saved notebook holds


def _images(cell) -> list[dict]:
    """The rich outputs of a cell that carry an image, as {mime: data}."""
    found = []
    for out in cell.get("outputs", []):
        if out.get("output_type") in ("display_data", "execute_result"):
            images = {k: v for k, v in out.get("data", {}).items() if k.startswith("image/")}
            if images:
                found.append(images)
    return found


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_a_coursekit_figure_renders_png_without_any_backend_formatter():
    fig = plot_loss_curves([(1, 3.0), (2, 2.0)], [(2, 2.5)], title="t")
    assert isinstance(fig, DisplayFigure)
    png = fig._repr_png_()  # no IPython shell here: nothing registered for Figure
    assert png.startswith(PNG_SIGNATURE)
    assert DisplayFigure()._repr_png_() is None  # nothing drawn: no image (like IPython's own print_figure)


def test_coursekit_figures_stay_out_of_pyplot():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_sweep([1, 2], {"a": [1.0, 2.0]}, xlabel="x")
    plot_runs({"run": SimpleNamespace(train_loss=[(1, 2.0)], eval_loss=[(1, 2.5)])})
    assert plt.get_fignums() == before  # nothing to close, nothing shown again by a backend


def test_comparison_plots_are_display_figures():
    from coursekit.comparison import MethodComparison, MethodRow
    from coursekit.prompting import PromptingComparison, PromptingRow

    row = MethodRow(method="lora", trainable_parameters=10, total_parameters=1000, trainable_percent=1.0,
                    peak_memory_bytes=5, memory_measured_as="x", train_seconds=1.0, tokens_per_second=1.0,
                    task_metric=0.5, general_probe_before=0.8, general_probe_after=0.6,
                    general_retention=0.75, checkpoint_bytes=40, inference="merged",
                    latency_seconds_per_answer=0.2, latency_ms_per_token=1.0, final_eval_loss=None, steps=3,
                    learning_rate=3e-4)
    prompt_row = PromptingRow(strategy="zero-shot", k=0, task_metric=0.5, fields={}, prompt_tokens_mean=10.0,
                              seconds_per_answer=0.1, throughput_seconds_per_answer=0.05, n=2, latency_n=1)
    for fig in (MethodComparison(rows=[row]).plot(), PromptingComparison(rows=[prompt_row]).plot()):
        assert isinstance(fig, DisplayFigure) and fig._repr_png_().startswith(PNG_SIGNATURE)


def test_agg_kernel_shows_each_coursekit_figure_once_and_the_final_loss_curves(tmp_path, monkeypatch):
    cells = [
        # 0: a figure as the cell's value
        f"from coursekit.plots import plot_loss_curves, plot_runs, plot_sweep\nplot_loss_curves({CURVES}, title='t')",
        # 1: two figures displayed explicitly, nothing as the cell's value
        "from IPython.display import display\n"
        "display(plot_sweep([1e-4, 1e-3], {'task': [0.1, 0.5]}, xlabel='learning rate'))\n"
        "fig = plot_loss_curves([(1, 2.0)])\ndisplay(fig)",
        # 2: NotebookProgress as the Trainer drives it: a live plot, then the final curves at train end
        "from types import SimpleNamespace\n"
        "import hashlib\n"
        "from coursekit.train.callbacks import LossHistory, NotebookProgress\n"
        "history = LossHistory()\n"
        "progress = NotebookProgress(history, title='run', redraw_s=3600)\n"
        "state = SimpleNamespace(global_step=0, max_steps=4)\n"
        "progress.on_train_begin(None, state, None)\n"
        "for step in range(1, 5):\n"
        "    state.global_step = step\n"
        "    history.on_log(None, state, None, logs={'loss': 3.0 / step})\n"
        "    progress.on_step_end(None, state, None)\n"
        "history.on_log(None, state, None, logs={'eval_loss': 1.0})\n"
        "progress.on_train_end(None, state, None)\n"
        "final = plot_loss_curves(history.train_loss, history.eval_loss, title='run', max_step=4)\n"
        "print('final', hashlib.sha256(final._repr_png_()).hexdigest())",
        # 3: a run loaded from the run cache shows the same final figure, drawn by the same function
        "from coursekit.train.callbacks import show_loss_curves\n"
        "handle = show_loss_curves(history.train_loss, history.eval_loss, title='run', max_step=4)\n"
        "assert show_loss_curves(history.train_loss, [], title='run', max_step=4, handle=handle) is handle",
        # 4: pyplot holds none of them
        "import matplotlib.pyplot as plt\nprint('pyplot figures', plt.get_fignums())",
    ]
    nb = _execute(cells, tmp_path, monkeypatch, "Agg")
    counts = [len(_images(c)) for c in nb.cells]
    assert counts == [1, 2, 1, 1, 0], counts
    for cell in nb.cells:
        for images in _images(cell):
            assert list(images) == ["image/png"]  # one image format per figure
    assert nb.cells[0].outputs[0]["output_type"] == "execute_result"
    (live,) = _images(nb.cells[2])
    digest = _stdout(nb.cells[2]).split("final ")[1].split()[0]
    # The plot was first drawn with one training loss; the saved output holds the final curves.
    assert hashlib.sha256(base64.b64decode(live["image/png"])).hexdigest() == digest
    assert "pyplot figures []" in _stdout(nb.cells[4])


def test_notebook_kernel_shows_plt_show_and_coursekit_figures_once(tmp_path, monkeypatch):
    """A kernel without MPLBACKEND (as the notebooks run): the inline backend draws pyplot's and coursekit's figures."""
    cells = [
        f"from coursekit.plots import plot_loss_curves\nplot_loss_curves({CURVES})",  # before pyplot is loaded
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()",
        f"plot_loss_curves({CURVES})",  # the inline backend's formatter now draws it, not _repr_png_ as well
        f"%config InlineBackend.figure_formats = ['svg']\nplot_loss_curves({CURVES})",
        "print('pyplot figures', plt.get_fignums())",
    ]
    nb = _execute(cells, tmp_path, monkeypatch, None)
    counts = [len(_images(c)) for c in nb.cells]
    assert counts == [1, 1, 1, 1, 0], counts
    assert [list(_images(c)[0]) for c in nb.cells[:4]] == [["image/png"]] * 3 + [["image/svg+xml"]]
    assert "pyplot figures []" in _stdout(nb.cells[4])


def test_papermill_run_keeps_coursekit_figures(tmp_path, monkeypatch):
    """The course's own runner (papermill) saves the image even when the kernel inherits MPLBACKEND=Agg."""
    from coursekit.runner import run_notebook

    monkeypatch.setenv("MPLBACKEND", "Agg")
    src = tmp_path / "src"
    src.mkdir()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("RESULTS_PATH = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(f"from coursekit.plots import plot_loss_curves\nplot_loss_curves({CURVES})"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, src / "99_figure.ipynb")
    run = run_notebook(src / "99_figure.ipynb", out=tmp_path / "out", cell_timeout_s=IMAGE_TIMEOUT_S)
    assert run.ok, run.error
    executed = nbformat.read(run.output_path, as_version=4)
    assert [list(images) for c in executed.cells for images in _images(c)] == [["image/png"]]
