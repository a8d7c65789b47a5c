"""The published API description is complete, and the Markdown reference matches it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from carsearch.apidoc import END, START, markdown_reference
from carsearch.app import create_app

DOC = Path(__file__).parents[2] / "docs" / "API-DOCUMENTATION.md"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app().openapi()


def test_every_operation_and_parameter_is_described_with_an_example(spec: dict[str, Any]) -> None:
    gaps = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            if not operation.get("summary") or not operation.get("description"):
                gaps.append(f"{where}: summary or description")
            for parameter in operation.get("parameters", []):
                if not parameter.get("description"):
                    gaps.append(f"{where} {parameter['name']}: description")
                if "example" not in parameter and "examples" not in parameter.get("schema", {}):
                    gaps.append(f"{where} {parameter['name']}: example")
            for status, response in operation["responses"].items():
                if not response.get("description"):
                    gaps.append(f"{where} {status}: description")
    assert gaps == []


def test_every_field_of_every_response_is_described(spec: dict[str, Any]) -> None:
    gaps = [
        f"{name}.{field}"
        for name, schema in spec["components"]["schemas"].items()
        if not name.startswith(("HTTPValidationError", "ValidationError"))
        for field, definition in schema.get("properties", {}).items()
        if not definition.get("description")
    ]
    assert gaps == []


def test_the_markdown_reference_is_current(spec: dict[str, Any]) -> None:
    document = DOC.read_text()
    section = document[document.index(START) : document.index(END) + len(END) + 1]
    assert section == markdown_reference(spec), (
        "docs/API-DOCUMENTATION.md is stale: run "
        "`carsearch openapi --markdown --write docs/API-DOCUMENTATION.md`"
    )
