"""pytest plugin: the run as a KTAP file, so the sim and hil count pytest
cases like every other suite (tests/ktap-count.sh).

    python3 -m pytest -p pytest_ktap --ktap FILE [--ktap-suite NAME] ...

with tests/ on PYTHONPATH. One line per test, in the order they ran: "ok",
"not ok" (a failure in setup, call or teardown), or "ok ... # SKIP reason"
(skipped, or an expected failure). A module that fails to import is a "not
ok" line of its own, and so is a session that ends with an internal or
usage error. Written when the session ends, so a run that dies before that
leaves no file, and the runner counts that as a failure.
"""
from __future__ import annotations

from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ktap")
    group.addoption("--ktap", metavar="FILE",
                    help="write the results as KTAP to FILE")
    group.addoption("--ktap-suite", metavar="NAME", default="python",
                    help="the KTAP suite name (default: python)")


def _name(nodeid: str) -> str:
    """A KTAP test name: no spaces or '#', which KTAP gives meaning to."""
    return nodeid.replace(" ", "_").replace("#", "_")


def _reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ").replace(
            "\n", " ")
    return getattr(report, "wasxfail", "") or "skipped"


class KtapWriter:
    """Collects each test's outcome and writes the KTAP file at the end."""

    def __init__(self, path: str, suite: str) -> None:
        self.path = path
        self.suite = suite
        # nodeid -> [failed, skip reason or None, diagnostic lines]
        self.results: dict[str, list[Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        r = self.results.setdefault(report.nodeid, [False, None, []])
        if report.failed:
            r[0] = True
            r[2].extend(str(report.longrepr).splitlines()[-20:])
        elif report.skipped:
            r[1] = _reason(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.results[f"collect:{report.nodeid or 'session'}"] = [
                True, None, str(report.longrepr).splitlines()[-20:]]

    def pytest_sessionfinish(self, session: pytest.Session,
                             exitstatus: int) -> None:
        # 0 passed, 1 some failed, 5 nothing selected: anything else
        # (interrupted, internal or usage error) is a failure, of its own
        # when nothing recorded says why.
        if exitstatus not in (0, 1, 5) and \
                not any(r[0] for r in self.results.values()):
            self.results[f"pytest_exit_status_{int(exitstatus)}"] = [
                True, None, []]
        lines = ["KTAP version 1", f"# suite: {self.suite}",
                 f"1..{len(self.results)}"]
        passed = failed = skipped = 0
        for i, (nodeid, (bad, skip, diag)) in enumerate(
                self.results.items(), 1):
            lines.extend(f"# {d}" for d in diag)
            if bad:
                failed += 1
                lines.append(f"not ok {i} {_name(nodeid)}")
            elif skip is not None:
                skipped += 1
                lines.append(f"ok {i} {_name(nodeid)} # SKIP {skip}")
            else:
                passed += 1
                lines.append(f"ok {i} {_name(nodeid)}")
        lines.append(f"# {self.suite}: {passed} passed, {failed} failed, "
                     f"{skipped} skipped")
        with open(self.path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("ktap")
    if path:
        config.pluginmanager.register(
            KtapWriter(path, config.getoption("ktap_suite")), "ktap-writer")
