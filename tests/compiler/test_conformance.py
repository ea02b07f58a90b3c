"""Every ONNX backend node case of the ops the importer knows: bit-exact on the golden model or
refused with a one-line reason, never a wrong result; docs/CONFORMANCE.md is this table."""
from pathlib import Path

import pytest

from compiler import conformance

from .test_onnx_import import CONFORMANCE

DOC = Path(__file__).parents[2] / "docs" / "CONFORMANCE.md"


@pytest.fixture(scope="module")
def table():
    return [(name, *conformance.run_case(case)) for name, case in sorted(conformance.cases().items())]


def test_no_case_fails(table):
    assert [r for r in table if r[1] not in ("pass", "refused")] == []


def test_the_issue_cases_pass(table):
    status = {r[0]: r[1] for r in table}
    assert all(status[n] == "pass" for n in CONFORMANCE), {n: status[n] for n in CONFORMANCE}


def test_refusals_are_one_line(table):
    for name, status, detail, _ in table:
        if status == "refused":
            assert detail and "\n" not in detail and "Traceback" not in detail, name


def test_doc_is_current(table):
    text = DOC.read_text()
    assert conformance.markdown(table) in text, "regenerate with: python -m compiler.conformance --markdown FILE"
