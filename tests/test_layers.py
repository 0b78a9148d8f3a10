"""The import contract: which part of coursekit may import which, read from the source with ``ast``.

GUIDE.md: data flows one way (notebook -> coursekit -> Hugging Face stack -> torch) and a lower module never imports
a higher one (memory math does not import training; training may import memory math). A "part" is a subpackage
(``coursekit/memory/``) or a top-level module (``coursekit/recommend.py``). Every import statement counts, inside
functions too, and so does ``importlib.import_module("coursekit....")`` with a literal name.

Two rules:

1. A part imports only the foundation (small shared modules that import nothing else of coursekit) and the parts
   listed for it in ``ALLOWED``.
2. No part imports another part's private names: ``from coursekit.x._y import ...``, ``import coursekit.x._y`` and
   ``from coursekit.x import _name`` are for ``x`` itself. The private top-level modules (``coursekit._results``,
   ``coursekit._figure``) belong to the whole package and are part of the foundation.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "coursekit"

#: Small modules every part may import; each imports only the foundation modules listed for it.
FOUNDATION: dict[str, set[str]] = {
    "_results": set(),  # ResultMixin: __repr__ and to_dict for result dataclasses
    "_figure": set(),  # figures that render themselves
    "units": set(),  # GB, GiB, MB, MiB and how a size is printed
    "validate": set(),  # "X must be a positive integer, got ..."
    "lessons": set(),  # the course map
    "model_ids": set(),  # the embedded model's name and folder, the real models' names and Hub ids
    "grading": {"units"},  # numeric and choice grading, sealed explanations
    "bnb_cpu": {"validate"},  # bitsandbytes' CPU 4-bit layout, undone, and timing its dequantization
    "module_swap": set(),  # replacing a submodule of a model
    "notices": set(),  # library messages the course explains instead of printing
}

EVERYTHING = "*"

#: The other parts, lowest first, and which of them each may import (besides the foundation).
ALLOWED: dict[str, set[str] | str] = {
    "env": set(),
    "archs": set(),
    "data": set(),
    "plots": set(),
    "notebook": set(),
    "scratch": set(),
    "evaluate": {"data"},
    "memory": {"archs", "env"},
    "models": {"data", "env", "evaluate"},  # build.py pretrains the embedded model and evaluates it
    "train": {"data", "env", "evaluate", "memory", "models", "notebook", "plots", "scratch"},  # notebook: count()
    "prompting": {"data", "evaluate"},
    "recommend": {"archs", "memory"},
    "comparison": {"archs", "data", "env", "evaluate", "memory", "models", "scratch", "train"},
    "exercises": {"archs"},
    "quiz": {"archs"},
    "widgets": {"archs", "memory", "recommend"},
    "colab": {"env"},
    "retarget": {"colab"},
    "runner": {"env"},
    "cli": EVERYTHING,  # the command line dispatches to each part's own command
    "__main__": {"cli"},
    "coursekit": EVERYTHING,  # coursekit/__init__.py: the lazily resolved public names
}

#: Private names imported across parts today, each with why it is still there. An entry that no longer matches an
#: import fails the test, so the list only shrinks.
KNOWN_PRIVATE_IMPORTS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # what it imports, dotted (module, or module.name for `from module import name`)
    line: int


def part_of(module: str) -> str:
    """``coursekit.memory.estimator`` -> ``memory``; ``coursekit.recommend`` -> ``recommend``; ``coursekit`` ->
    ``coursekit``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _resolve_relative(source: str, is_package: bool, level: int, module: str | None) -> str:
    base = source.split(".") if is_package else source.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _is_module(dotted: str, package_dir: Path) -> bool:
    """Whether ``dotted`` (``coursekit.x...``) names a module or package under ``package_dir``."""
    rel = Path(*dotted.split(".")[1:])
    return (package_dir / rel).is_dir() or (package_dir / rel).with_suffix(".py").is_file()


def imports_in(source_text: str, module: str, is_package: bool = False, package_dir: Path = PACKAGE) -> list[Import]:
    """Every coursekit import in one module's source, at any depth (functions, classes, try blocks)."""
    found = []
    for node in ast.walk(ast.parse(source_text)):
        if isinstance(node, ast.Import):
            found += [Import(module, a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_relative(module, is_package, node.level, node.module) if node.level else node.module
            # `from coursekit import scratch` imports a part, `from coursekit import finetune` a name (see _target_part)
            found += [Import(module, f"{base}.{alias.name}", node.lineno) for alias in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            found.append(Import(module, node.args[0].value, node.lineno))
    return [i for i in found if i.target == "coursekit" or i.target.startswith("coursekit.")]


def _target_part(target: str, package_dir: Path) -> str:
    """The part an import lands in: the first name under coursekit when it is a module, else the package."""
    parts = target.split(".")
    if len(parts) > 1 and _is_module(".".join(parts[:2]), package_dir):
        return parts[1]
    return "coursekit"


def layer_violations(imports: list[Import], package_dir: Path = PACKAGE) -> list[str]:
    out = []
    for i in imports:
        source, target = part_of(i.source), _target_part(i.target, package_dir)
        if target == source or target in FOUNDATION and (source not in FOUNDATION or target in FOUNDATION[source]):
            continue
        allowed = FOUNDATION.get(source, ALLOWED.get(source))
        if allowed is None:
            out.append(f"{i.source}: part {source!r} is not in ALLOWED or FOUNDATION (add it, with what it imports)")
        elif allowed != EVERYTHING and target not in allowed:
            out.append(f"{i.source}:{i.line} imports {i.target}, but {source!r} may import only "
                       f"{sorted(allowed) or 'the foundation'}")
    return out


def private_violations(imports: list[Import], package_dir: Path = PACKAGE) -> list[tuple[str, str, str]]:
    """``(part, target, message)`` for each private name imported from another part."""
    out = []
    for i in imports:
        source, target = part_of(i.source), _target_part(i.target, package_dir)
        if target == source:
            continue
        inside = i.target.split(".")[2:]  # the names below the part (coursekit.<part>.<these>)
        if any(p.startswith("_") and not p.startswith("__") for p in inside):
            out.append((source, i.target, f"{i.source}:{i.line} imports {i.target}, a private name of {target!r}"))
    return out


def _modules(package_dir: Path = PACKAGE):
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent).with_suffix("")
        is_package = rel.name == "__init__"
        dotted = ".".join(rel.parts[:-1] if is_package else rel.parts)
        yield dotted, is_package, path.read_text(encoding="utf-8")


def all_imports(package_dir: Path = PACKAGE) -> list[Import]:
    return [i for dotted, is_package, text in _modules(package_dir)
            for i in imports_in(text, dotted, is_package, package_dir)]


# ------------------------------------------------------------------------------------------------ the contract


def test_every_part_is_in_the_contract():
    parts = {part_of(dotted) for dotted, _, _ in _modules()}
    missing = sorted(parts - set(FOUNDATION) - set(ALLOWED))
    assert not missing, f"parts of coursekit with no entry in FOUNDATION or ALLOWED: {missing}"
    stale = sorted((set(FOUNDATION) | set(ALLOWED)) - parts)
    assert not stale, f"entries for parts that no longer exist: {stale}"


def test_parts_import_only_what_the_contract_allows():
    problems = layer_violations(all_imports())
    assert not problems, "\n".join(problems)


def test_no_part_imports_another_parts_private_names():
    found = private_violations(all_imports())
    unexpected = [msg for part, target, msg in found if (part, target) not in KNOWN_PRIVATE_IMPORTS]
    assert not unexpected, "\n".join(unexpected)
    stale = sorted(set(KNOWN_PRIVATE_IMPORTS) - {(part, target) for part, target, _ in found})
    assert not stale, f"KNOWN_PRIVATE_IMPORTS lists imports that are gone: remove {stale}"


def test_the_allowed_graph_has_no_cycle():
    graph = {p: set() if a == EVERYTHING else set(a) for p, a in ALLOWED.items()}
    graph.update({p: set(a) for p, a in FOUNDATION.items()})
    done, visiting = set(), []

    def visit(p):
        if p in visiting:
            pytest.fail(f"import cycle allowed: {' -> '.join(visiting[visiting.index(p):] + [p])}")
        if p in done:
            return
        visiting.append(p)
        for q in graph.get(p, ()):
            visit(q)
        visiting.pop()
        done.add(p)

    for p in graph:
        visit(p)


# ------------------------------------------------------------------------------------------------ the checker itself


FAKE = '''
import os
from coursekit.units import GB                     # foundation: always fine
from coursekit.memory import estimate_memory       # memory from recommend: allowed


def late():
    from coursekit.train import finetune            # training from memory math: not allowed (inside a function)
    from coursekit.train.engine import _private     # a private name of train
    import coursekit.quiz._secret                   # a private module of quiz
    from coursekit import scratch                   # a part, imported as a module
    import importlib
    importlib.import_module("coursekit.widgets.decision")
'''


def test_the_checker_finds_imports_at_any_depth():
    found = {(i.target, i.line) for i in imports_in(FAKE, "coursekit.memory.fake")}
    assert ("coursekit.train.finetune", 8) in found and ("coursekit.quiz._secret", 10) in found
    assert ("coursekit.scratch", 11) in found and ("coursekit.widgets.decision", 13) in found
    assert not any(t.startswith("os") for t, _ in found)


def test_the_checker_flags_a_lower_part_importing_a_higher_one():
    problems = layer_violations(imports_in(FAKE, "coursekit.memory.fake"))
    flagged = {p.split(" imports ")[1].split(",")[0] for p in problems}
    assert flagged == {"coursekit.train.finetune", "coursekit.train.engine._private", "coursekit.quiz._secret",
                       "coursekit.scratch", "coursekit.widgets.decision"}  # not units (foundation), not memory
    # the same imports from the command line are fine
    assert layer_violations(imports_in(FAKE, "coursekit.cli")) == []
    # a part nobody listed is reported rather than waved through
    assert any("not in ALLOWED" in p for p in layer_violations(imports_in(FAKE, "coursekit.newpart")))


def test_the_checker_flags_private_names_across_parts_only():
    found = {target for _, target, _ in private_violations(imports_in(FAKE, "coursekit.recommend"))}
    assert found == {"coursekit.train.engine._private", "coursekit.quiz._secret"}
    # inside its own part a private name is fine
    assert private_violations(imports_in("from coursekit.train.engine import _private", "coursekit.train.x")) == []
    # relative imports resolve to their part
    rel = imports_in("from ..train.engine import _private", "coursekit.memory.fake")
    assert [i.target for i in rel] == ["coursekit.train.engine._private"] and private_violations(rel)
