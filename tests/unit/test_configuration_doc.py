"""docs/configuration.md documents every field of Settings: its environment variable
(and aliases), its default, the processes that read it and what it does."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices, SecretStr, TypeAdapter
from pydantic.fields import FieldInfo

from ingest.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
PROCESSES = {"api", "worker", "scheduler", "cli"}
NOT_WIRED = "none (not wired yet)"


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The variables pydantic-settings reads for a field, preferred name first."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    if isinstance(alias, str):
        return [alias]
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return [f"{prefix}{name}".upper()]


def rendered_defaults(default: Any) -> set[str]:
    """The spellings of a default the table may use (all of them valid input)."""
    if default is None:
        return {"(unset)"}
    if isinstance(default, bool):
        return {str(default).lower()}
    if isinstance(default, timedelta):
        return {TypeAdapter(timedelta).dump_python(default, mode="json")}
    if isinstance(default, Path):
        text = str(default)
        return {text, f"./{text}"}
    if isinstance(default, SecretStr):
        return {"(unset)"}
    if isinstance(default, float):
        return {f"{default:g}", repr(default)}
    if default == "":
        return {"(empty)"}
    return {str(default)}


def table_rows() -> dict[str, list[str]]:
    """First variable of each row of the settings table -> the row's cells."""
    text = DOC.read_text()
    assert "\n## Every setting\n" in text
    section = text.split("\n## Every setting\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        match = re.match(r"^\| `([A-Z][A-Z0-9_]*)`", line)
        if match:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows[match.group(1)] = cells
    return rows


FIELDS = list(Settings.model_fields.items())


@pytest.mark.parametrize(("name", "field"), FIELDS, ids=[n for n, _ in FIELDS])
def test_every_setting_has_a_row_with_its_variables_and_default(
    name: str, field: FieldInfo
) -> None:
    names = env_names(name, field)
    rows = table_rows()
    assert names[0] in rows, f"docs/configuration.md has no row for {names[0]} ({name})"
    variable, default, _allowed, read_by, description = rows[names[0]]
    for alias in names:
        assert f"`{alias}`" in variable, f"{alias} is not named in the row of {names[0]}"
    shown = default.strip("`")
    assert shown in rendered_defaults(field.default), (
        f"{names[0]}: the doc says the default is {shown!r}, Settings says {field.default!r}"
    )
    if read_by != NOT_WIRED:
        readers = {r.strip() for r in read_by.split(",")}
        assert readers, names[0]
        assert readers <= PROCESSES, f"{names[0]}: unknown process in {read_by!r}"
    assert len(description) >= 30, f"{names[0]} needs a real description"


def test_the_table_documents_no_setting_that_does_not_exist() -> None:
    documented = set(table_rows())
    known = {env_names(n, f)[0] for n, f in FIELDS}
    assert documented - known == set()


def test_allowed_values_match_the_literal_choices() -> None:
    rows = table_rows()
    for name, field in FIELDS:
        choices = getattr(field.annotation, "__args__", ())
        if all(isinstance(c, str) for c in choices) and choices:
            allowed = rows[env_names(name, field)[0]][2]
            assert re.findall(r"`([^`]+)`", allowed) == list(choices), name


def test_docs_name_only_settings_that_exist() -> None:
    """A typo'd INGEST_ name in any doc points users at a setting that does nothing."""
    known = {alias for n, f in FIELDS for alias in env_names(n, f)}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        names = set(re.findall(r"\bINGEST_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
        assert names - known == set(), f"{path.name} names settings that do not exist"
