"""``python -m coursekit retarget OWNER/NAME``: point the course at another GitHub repository.

The repository is named once, in pyproject.toml (``[project.urls] Repository``). This command reads the current
name there and replaces it, and only it, where it stands in a URL:

- ``github.com/OLD`` (pyproject's URL, the install cell's ``git+https://github.com/OLD@main``, README links),
- ``colab.research.google.com/github/OLD/`` and ``mybinder.org/v2/gh/OLD/`` (the badges),

in pyproject.toml, README.md and every ``notebooks/NN_*.py`` and ``NN_*.ipynb``. Both files of a notebook pair
get the same textual edit, so they stay in sync without jupytext; nothing else in them changes (whitespace,
outputs, a user's own edits). Running it again with the same name changes nothing.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from coursekit.colab import pyproject_repository

# GitHub's rules: an owner is 1-39 letters, digits or single hyphens, not starting or ending with one; a
# repository name is 1-100 letters, digits, '.', '-' or '_', and not '.' or '..'.
_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_PREFIXES = (r"github\.com/", r"colab\.research\.google\.com/github/", r"mybinder\.org/v2/gh/")


def validate_repository(repository: str) -> str:
    """``OWNER/NAME`` as given (surrounding spaces and a trailing ``.git`` dropped); ValueError if it is not one."""
    text = (repository or "").strip()
    if text.endswith(".git"):
        text = text[:-4]
    owner, sep, name = text.partition("/")
    if not sep or not _OWNER.match(owner) or not _NAME.match(name) or name in {".", ".."}:
        raise ValueError(
            f"{repository!r} is not a GitHub repository: give OWNER/NAME, e.g. 'my-org/fine-tuning-llms' "
            "(OWNER: 1-39 letters, digits or single hyphens, not at either end; NAME: 1-100 letters, digits, "
            "'.', '-' or '_'; no URL, no extra '/')")
    return f"{owner}/{name}"


def targets(root: str | Path) -> list[Path]:
    """The files that name the repository: pyproject.toml, README.md and the lessons (both files of each pair)."""
    root = Path(root)
    files = [root / "pyproject.toml", root / "README.md"]
    notebooks = root / "notebooks"
    if notebooks.is_dir():
        files += sorted(p for p in notebooks.iterdir()
                        if p.suffix in {".py", ".ipynb"} and p.name[:2].isdigit() and p.name[2:3] == "_")
    return [p for p in files if p.is_file()]


def _pattern(old: str) -> re.Pattern:
    # OLD only where a URL names it, and only as a whole name: "a/b" must not match inside "a/bc" or "xa/b".
    return re.compile(r"(?<![A-Za-z0-9-])(" + "|".join(_PREFIXES) + r")" + re.escape(old)
                      + r"(?=\.git\b|[^A-Za-z0-9._-]|$)")


def retarget_text(text: str, old: str, new: str) -> str:
    """``text`` with every URL occurrence of repository ``old`` replaced by ``new``."""
    if old == new:
        return text
    return _pattern(old).sub(lambda m: m.group(1) + new, text)


def retarget(repository: str, root: str | Path = ".") -> dict[Path, int]:
    """Point the course under ``root`` at ``repository`` (OWNER/NAME). Returns {changed file: replacements}."""
    new = validate_repository(repository)
    root = Path(root)
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        raise ValueError(f"{pyproject} does not exist: pass the course's root directory (--root)")
    old = pyproject_repository(pyproject)
    if old is None:
        raise ValueError(f"{pyproject} has no [project.urls] Repository = \"https://github.com/OWNER/NAME\"; "
                         "add it with the repository the files name now, then run retarget again")
    changed: dict[Path, int] = {}
    if old == new:
        return changed
    pattern = _pattern(old)
    for path in targets(root):
        raw = path.read_bytes().decode("utf-8")  # bytes: keep the file's line endings exactly
        text, count = pattern.subn(lambda m: m.group(1) + new, raw)
        if count:
            path.write_bytes(text.encode("utf-8"))
            changed[path] = count
    return changed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m coursekit retarget",
        description="Point the badges, the Colab install cells, README links and pyproject.toml at another "
                    "GitHub repository (a fork or a published copy of the course).")
    parser.add_argument("repository", help="OWNER/NAME on GitHub, e.g. my-org/fine-tuning-llms")
    parser.add_argument("--root", default=".", help="the course's root directory (default: the current one)")
    args = parser.parse_args(argv)
    old = pyproject_repository(Path(args.root) / "pyproject.toml") if (Path(args.root) / "pyproject.toml").is_file() \
        else None
    changed = retarget(args.repository, args.root)
    new = validate_repository(args.repository)
    if not changed:
        print(f"nothing to change: the course already points at {new}")
        return 0
    for path, count in changed.items():
        print(f"{path}: {count} URL{'s' if count != 1 else ''}")
    print(f"{old} -> {new} in {len(changed)} files. A notebook opened elsewhere still has the old cells; commit "
          "these files and push them to the new repository before opening the Colab badges.")
    return 0
