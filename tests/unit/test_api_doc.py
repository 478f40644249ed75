"""docs/api.md names every field of the spec and of the status, and nothing the models lack (issue 29)."""

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from chaosdemo.api.models import ChaosDemoSpec, ChaosDemoStatus, InjectionRecord
from chaosdemo.api.suite import ChaosDemoSuiteSpec, ChaosDemoSuiteStatus

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def section(title: str) -> str:
    return DOC.read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def named_in_first_column(text: str) -> set[str]:
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([\w.]+)`", row)}


def fields(model: type[BaseModel], prefix: str = "", depth: int = 1) -> set[str]:
    """The model's fields as a user writes them (camelCase), nested models one level down."""
    out = set()
    for name, f in model.model_fields.items():
        alias = f.alias or name
        inner = [a for a in (typing.get_args(f.annotation) or (f.annotation,))
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        out |= fields(inner[0], f"{prefix}{alias}.", depth - 1) if inner and depth > 0 else {prefix + alias}
    return out


def test_the_spec_table_names_every_field_of_the_spec_and_nothing_else() -> None:
    assert named_in_first_column(section("The spec")) == fields(ChaosDemoSpec)


def test_the_status_table_names_every_field_of_the_status_and_the_injection_record() -> None:
    status = section("The status")
    assert named_in_first_column(status) == fields(ChaosDemoStatus, depth=0)
    injection = next(line for line in status.splitlines() if line.startswith("| `injection` |"))
    assert set(re.findall(r"`(\w+)`", injection)) - {"injection"} == fields(InjectionRecord, depth=0)


def test_the_suite_tables_name_every_field_of_a_suites_spec_and_status() -> None:
    text = section("Suites")
    spec_table, status_table = text.split("| status field |", 1)
    assert named_in_first_column(spec_table) == fields(ChaosDemoSuiteSpec, depth=0)
    assert named_in_first_column(status_table) == fields(ChaosDemoSuiteStatus, depth=0)
