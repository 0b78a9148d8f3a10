"""Per-notebook assertions: ``nbNN.py`` defines ``check(results: dict) -> None`` for ``notebooks/NN_*.ipynb``.

``tests/test_notebooks.py`` executes each notebook once and calls its check on the results JSON the notebook
recorded. A notebook without a checks module fails that test: running without error is not enough.
"""
