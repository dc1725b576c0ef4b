"""``--memprof-junit FILE``: a memory-only JUnit report, readable by Jenkins and GitLab.

junit-xml writes the suite, the testcases and their failures. It has no per-testcase
properties (only suite properties), so each testcase's figures are added afterwards as a
``<properties>`` element, which both Jenkins' and GitLab's JUnit readers accept.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from junit_xml import TestCase, TestSuite, to_xml_report_string

from .files import replace_atomically

# The <failure type> per broken limit (verdict.FailureKind names), so CI tools tell them apart.
FAILURE_TYPES = {
    "PEAK_OVER_LIMIT": "MemoryLimit",
    "LEAKS_OVER_LIMIT": "MemoryLeakLimit",
    "LEAKED": "MemoryLeak",
    "UNCOLLECTABLE": "UncollectableGarbage",
    "PEAK_GREW": "MemoryIncrease",
}


def failure_type(kinds: Sequence[str]) -> str:
    """The JUnit failure type of a test that broke ``kinds`` (the first one's; MemoryLimit if unknown)."""
    return next((FAILURE_TYPES[kind] for kind in kinds if kind in FAILURE_TYPES), "MemoryLimit")


def _split(nodeid: str) -> tuple[str, str]:
    """(classname, name) as pytest's own JUnit report does: module path dotted, then the rest."""
    path, _, rest = nodeid.partition("::")
    module = path[:-3] if path.endswith(".py") else path
    parts = rest.split("::")
    classname = ".".join([module.replace("/", "."), *parts[:-1]])
    return classname, parts[-1] if parts else nodeid


def write(path: str, results: Sequence, failure_texts: Mapping[str, str], totals: Mapping[str, object]) -> None:
    """Write the report atomically: one testcase per tracked test, a failure per broken limit."""
    cases = []
    for result in results:
        classname, name = _split(result.nodeid)
        case = TestCase(name, classname=classname, elapsed_sec=result.duration_s)
        text = failure_texts.get(result.nodeid)
        if result.memory_failed and text:
            kinds = result.failure_kinds or [failure.kind.name for failure in result.failures]
            case.add_failure_info(message=text.splitlines()[0], output=text, failure_type=failure_type(kinds))
        cases.append(case)
    suite = TestSuite("pytest-memprof", cases, properties={key: str(value) for key, value in totals.items()})
    root = ET.fromstring(to_xml_report_string([suite], encoding="utf-8"))
    # junit-xml writes testcases in the order given: pair them back with their results.
    for element, result in zip(root.iter("testcase"), results):
        properties = ET.Element("properties")
        for name, value in result.properties():
            ET.SubElement(properties, "property", name=name, value=str(value))
        element.insert(0, properties)
    replace_atomically(path, lambda partial: ET.ElementTree(root).write(partial, encoding="utf-8",
                                                                        xml_declaration=True))
