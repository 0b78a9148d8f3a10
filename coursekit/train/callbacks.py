"""Trainer callbacks: the loss history every run keeps, and the notebook's progress bar with a live loss plot."""
from __future__ import annotations

import os
import time

from transformers import TrainerCallback

_HEADLESS_PARENTS = ("papermill", "pytest", "nbconvert", "nbclient", "coursekit")


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def headless_kernel() -> bool:
    """True when the kernel was started by papermill, pytest, nbconvert or ``coursekit course`` (no one watches)."""
    try:
        import psutil

        cmdline = " ".join(psutil.Process().parent().cmdline())
    except Exception:
        return False
    return any(word in cmdline for word in _HEADLESS_PARENTS)


def want_progress(progress) -> bool:
    """``progress="auto"``: on in a notebook someone is looking at, off in tests, papermill and scripts.

    The environment variable ``COURSEKIT_PROGRESS=0`` or ``=1`` overrides ``"auto"``.
    """
    if progress not in ("auto", True, False):
        raise ValueError(f"progress must be 'auto', True or False, got {progress!r}")
    if progress != "auto":
        return bool(progress)
    env = os.environ.get("COURSEKIT_PROGRESS")
    if env in ("0", "1"):
        return env == "1"
    return in_notebook() and not headless_kernel()


class LossHistory(TrainerCallback):
    """Keeps (step, loss) pairs for training and validation loss as the Trainer logs them."""

    def __init__(self):
        self.train_loss: list[tuple[int, float]] = []
        self.eval_loss: list[tuple[int, float]] = []
        self.listeners = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        changed = False
        if "loss" in logs:
            self.train_loss.append((int(state.global_step), float(logs["loss"])))
            changed = True
        if "eval_loss" in logs:
            self.eval_loss.append((int(state.global_step), float(logs["eval_loss"])))
            changed = True
        if changed:
            for listener in self.listeners:
                listener(self, state)


class NotebookProgress(TrainerCallback):
    """A tqdm.auto progress bar and a loss plot redrawn in place (at most every ``redraw_s`` seconds).

    The plot is one display output (``display_id``) updated in place; at train end it is redrawn with the final
    curves, so a saved or executed notebook keeps that image (image/png, see ``coursekit._figure``).
    A new NotebookProgress on the same history (a retry after running out of memory) takes over the previous one's
    plot instead of showing a second one.
    """

    def __init__(self, history: LossHistory, title: str = "", redraw_s: float = 1.0):
        self.history, self.title, self.redraw_s = history, title, redraw_s
        self.bar = None
        self.handle = None
        self._last_draw = 0.0
        for listener in list(history.listeners):
            previous = getattr(listener, "__self__", None)
            if isinstance(previous, NotebookProgress):
                history.listeners.remove(listener)
                self.handle = self.handle or previous.handle
                if previous.bar is not None:
                    previous.bar.close()
        history.listeners.append(self._on_history)

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.max_steps, desc=self.title or "training", unit="step")
        self.bar.update(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
            if self.history.train_loss:
                self.bar.set_postfix(loss=f"{self.history.train_loss[-1][1]:.3f}", refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
        self._draw(state, force=True)

    def _on_history(self, history, state):
        self._draw(state)

    def _draw(self, state, force=False):
        now = time.monotonic()
        if not force and now - self._last_draw < self.redraw_s:
            return
        self._last_draw = now
        self.handle = show_loss_curves(self.history.train_loss, self.history.eval_loss, title=self.title,
                                       max_step=state.max_steps, handle=self.handle)


def show_loss_curves(train_loss, eval_loss, *, title: str = "", max_step: int | None = None, handle=None):
    """Display the loss curves as a figure (image/png in a saved notebook), or redraw them in place in ``handle``
    (a display handle this function returned before); returns the handle. Live training and a run loaded from the
    run cache draw the same figure."""
    from IPython.display import display

    from coursekit.plots import plot_loss_curves

    fig = plot_loss_curves(train_loss, eval_loss, title=title, max_step=max_step)
    if handle is None:
        return display(fig, display_id=True)
    handle.update(fig)
    return handle
