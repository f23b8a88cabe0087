"""Counts of a JUnit XML report per test directory, then each failure with its first error line.

Usage: report.py JUNIT_XML
"""

from __future__ import annotations

import collections
import sys
import xml.etree.ElementTree as ET

OUTCOMES = ("passed", "failed", "error", "skipped")


def directory(classname: str) -> str:
    # tests.system_tests.test_artifacts.test_misc.TestX -> test_artifacts
    parts = classname.split(".")
    return parts[2] if len(parts) > 3 and parts[1] == "system_tests" else ".".join(parts[:-1])


def first_line(node: ET.Element) -> str:
    # pytest marks the raised error's lines with `E `; the message may be only "collection failure".
    for line in (node.text or "").splitlines():
        if line.startswith("E "):
            return line[1:].strip()[:200]
    for text in (node.get("message"), node.text):
        for line in (text or "").splitlines():
            line = line.strip()
            if line:
                return line[:200]
    return "(no message)"


def main(path: str) -> None:
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    problems: list[tuple[str, str, str]] = []
    for case in ET.parse(path).getroot().iter("testcase"):
        # A module that failed to import is reported with its module path as the test name.
        where = directory(case.get("classname") or f"{case.get('name', '')}.module")
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "error"
                problems.append((outcome, name, first_line(child)))
                break
            if child.tag == "skipped":
                outcome = "skipped"
        counts[where][outcome] += 1
    total: collections.Counter = collections.Counter()
    print(f"{'directory':<24}" + "".join(f"{o:>9}" for o in OUTCOMES))
    for where in sorted(counts):
        total.update(counts[where])
        print(f"{where:<24}" + "".join(f"{counts[where][o]:>9}" for o in OUTCOMES))
    print(f"{'total':<24}" + "".join(f"{total[o]:>9}" for o in OUTCOMES))
    if problems:
        print("\nfailures and errors (first line of each):")
        for outcome, name, line in sorted(problems, key=lambda p: p[1]):
            print(f"{outcome.upper():<6} {name}\n       {line}")


if __name__ == "__main__":
    main(sys.argv[1])
