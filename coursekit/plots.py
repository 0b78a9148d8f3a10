"""Matplotlib figures for the lessons: loss curves, several runs side by side, hyperparameter sweeps.

Each function returns a ``matplotlib.figure.Figure`` (a notebook displays it as an image whatever the matplotlib
backend, see ``coursekit._figure``; a script can ``savefig`` it). No figure is registered with pyplot.
"""
from __future__ import annotations


def _pairs(curve, name):
    if curve is None:
        return [], []
    try:
        pairs = [(float(s), float(v)) for s, v in curve]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of (step, value) pairs") from None
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _new_axes(ax, figsize=(6, 3.5)):
    if ax is not None:
        return ax.figure, ax
    from coursekit._figure import new_figure

    fig = new_figure(figsize=figsize)
    return fig, fig.add_subplot(1, 1, 1)


def plot_loss_curves(train_loss=None, eval_loss=None, *, title: str = "", max_step=None, ax=None, label: str = ""):
    """Training loss (line) and validation loss (dots) against optimizer step.

    ``train_loss`` may also be a RunResult, whose curves are used.
    """
    if hasattr(train_loss, "train_loss") and hasattr(train_loss, "eval_loss"):
        run = train_loss
        train_loss, eval_loss = run.train_loss, run.eval_loss
        label = label or run.method
    xs, ys = _pairs(train_loss, "train_loss")
    ex, ey = _pairs(eval_loss, "eval_loss")
    fig, ax = _new_axes(ax)
    prefix = f"{label} " if label else ""
    line = None
    if xs:
        (line,) = ax.plot(xs, ys, label=f"{prefix}train")
    if ex:
        color = line.get_color() if line is not None else None
        ax.plot(ex, ey, "o--", color=color, label=f"{prefix}validation", markersize=4)
    if max_step:
        ax.set_xlim(0, max_step)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (cross-entropy, nats/token)")
    if title:
        ax.set_title(title)
    if xs or ex:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_runs(runs: dict, *, title: str = "", which: str = "both"):
    """Several runs' loss curves on one plot; ``runs`` maps a label to a RunResult."""
    if not isinstance(runs, dict) or not runs:
        raise ValueError("runs must be a non-empty dict of label -> RunResult")
    if which not in ("train", "eval", "both"):
        raise ValueError(f"which must be 'train', 'eval' or 'both', got {which!r}")
    fig, ax = _new_axes(None, figsize=(7, 4))
    for label, run in runs.items():
        plot_loss_curves(run.train_loss if which != "eval" else None,
                         run.eval_loss if which != "train" else None, ax=ax, label=str(label))
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_sweep(values, metrics: dict, *, xlabel: str, title: str = "", logx: bool = True):
    """One hyperparameter on x, one line per metric: ``metrics`` maps a name to a list of y values (same length)."""
    values = list(values)
    if not values:
        raise ValueError("plot_sweep needs at least one x value")
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError("metrics must be a non-empty dict of name -> list of values")
    for name, ys in metrics.items():
        if len(ys) != len(values):
            raise ValueError(f"metric {name!r} has {len(ys)} values for {len(values)} x values")
    fig, ax = _new_axes(None, figsize=(6.5, 4))
    for name, ys in metrics.items():
        ax.plot(values, ys, "o-", label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
