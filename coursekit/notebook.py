"""What a notebook records: the figures it measured, written to ``RESULTS_PATH`` as JSON.

Tests and ``make course`` read that file and assert on it. In a notebook::

    results = coursekit.Results(RESULTS_PATH, notebook="03_full_fine_tuning")
    results.record(task_metric_base=0.02)
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from coursekit._results import to_plain


class Results:
    """A dict of measured figures, saved after every ``record`` when a path is given (None: kept in memory)."""

    def __init__(self, path: str | os.PathLike | None, notebook: str = "", model: str | None = None) -> None:
        self.path = Path(path) if path else None
        self.data: dict = {"notebook": notebook}
        if model is not None:  # the model that produced every figure in this file
            self.data["model"] = str(model)

    def record(self, **figures) -> dict:
        if not figures:
            raise ValueError("record() needs at least one name=value figure")
        self.data.update(to_plain(figures))
        self._save()
        return figures

    def __getitem__(self, key):
        return self.data[key]

    def __contains__(self, key) -> bool:
        return key in self.data

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".json.tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.data, fh, indent=2, sort_keys=True)
        os.replace(tmp, self.path)

    def __repr__(self) -> str:
        return f"Results({self.path}, {len(self.data) - 1} figures)"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in the number it agrees with: ``count(1, "step")`` is "1 step", ``count(2, "step")``
    "2 steps", ``count(1200, "ticket")`` "1,200 tickets". Lesson prose built from figures reads right at any size."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"count needs a whole number, got {n!r} ({type(n).__name__})")
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in str(text).splitlines())


def fact_check_markdown(claim: str, computed: str | None = None, title: str = "Fact check") -> str:
    """The Markdown of a fact-check box: a quoted claim, then (when given) what the course computed.

    Every lesson quotes widely repeated claims the same way, so the box is written once here.
    """
    if not str(claim).strip():
        raise ValueError("fact_check needs the claim it checks (a non-empty string)")
    text = f"**{title}.** {claim}"
    if computed is not None:
        if not str(computed).strip():
            raise ValueError("computed is empty: pass what the course computed, or leave it out")
        text += f"\n\n**Computed:** {computed}"
    return _quoted(text)


def fact_check(claim: str, computed: str | None = None, title: str = "Fact check") -> None:
    """Display a fact-check box in a notebook (see ``fact_check_markdown``)."""
    from IPython.display import Markdown, display

    display(Markdown(fact_check_markdown(claim, computed, title)))
