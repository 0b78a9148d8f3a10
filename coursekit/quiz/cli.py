"""``python -m coursekit quiz ...``: build the nbgrader course, seal a draft bank, print an answer key."""
from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit quiz", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="write an nbgrader course (config + one assignment per lesson)")
    b.add_argument("--out", required=True, help="course directory to write")
    b.add_argument("--lessons", default=None, help="comma-separated lessons, e.g. 01,02 (default: all)")
    b.add_argument("--timeout-s", type=int, default=None,
                   help="seconds nbgrader lets one cell run before interrupting it (default: sized for quiz "
                        "cells, CELL_TIMEOUT_S in coursekit/quiz/nbgrader_course.py)")
    s = sub.add_parser("seal", help="turn a draft bank's plain answers and explanations into hashes / sealed text")
    s.add_argument("draft")
    s.add_argument("--out", required=True)
    k = sub.add_parser("key", help="print a bank's answer key (for instructors)")
    k.add_argument("bank", help="lesson (01..06) or a YAML path")
    sub.add_parser("list", help="the banks and their question counts")
    args = parser.parse_args(argv)

    if args.action == "build":
        from coursekit.quiz.nbgrader_course import build_course

        timeout = {} if args.timeout_s is None else {"timeout_s": args.timeout_s}
        paths = build_course(args.out, lessons=args.lessons, **timeout)
        for p in paths:
            print(p)
        print(f"wrote {len(paths)} assignment(s) and nbgrader_config.py under {args.out}")
        return 0
    if args.action == "seal":
        import yaml

        from coursekit.quiz.bank import read_yaml, seal_document

        sealed = seal_document(read_yaml(args.draft), args.draft)
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write("# Question bank. Choice answers are salted hashes and explanations are sealed: "
                     "see quizzes/README.md.\n")
            yaml.safe_dump(sealed, fh, sort_keys=False, allow_unicode=True, width=110)
        print(f"sealed {len(sealed['questions'])} questions into {args.out}")
        return 0
    from coursekit.lessons import PRACTICE_LESSONS
    from coursekit.quiz.bank import load_bank

    if args.action == "key":
        bank = load_bank(args.bank)
        for q in bank.questions:
            if q.kind == "choice":
                answer = q.correct_key()
            elif q.kind == "numeric":
                answer = f"{q.expected():.6g} {q.unit}".strip()
            else:
                answer = ", ".join(f"{f.name}={q.field_key(f)}" if f.kind == "choice" else f"{f.name} in "
                                   f"[{f.min}, {f.max}]" for f in q.fields)
            print(f"{q.id:<28} {answer}")
        return 0
    for lesson in PRACTICE_LESSONS:
        bank = load_bank(lesson)
        print(f"{lesson}  {bank.title:<32} {len(bank.questions)} questions, {bank.max_points:g} points")
    return 0
