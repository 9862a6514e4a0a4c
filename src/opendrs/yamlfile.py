"""Reading YAML/JSON documents into pydantic models with errors that name the
file, the line and the field, so a bad file is fixed in one look."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from opendrs.domain.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


def read_document(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML (or JSON) file; returns the data and its node tree for line lookups."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read file: {exc.strerror}", source=str(path)) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f"line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(
            f"not valid YAML: {exc.problem}", source=f"{path} {line}".strip()
        ) from exc
    return (data if data is not None else {}), node


def line_of(node: yaml.Node | None, location: tuple[int | str, ...]) -> int | None:
    """1-based line of the deepest node reachable along `location`."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in location:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            match = node.value[part] if part < len(node.value) else None
        else:
            match = None
        if match is None:
            break
        node = match
        line = node.start_mark.line + 1
    return line


def validate(model: type[M], data: Any, *, source: str, node: yaml.Node | None = None) -> M:
    """Validate `data` against `model`; the first error becomes an InvalidInput."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = tuple(first["loc"])
        field = ".".join(str(p) for p in location)
        line = line_of(node, location)
        where = f"{source} line {line}" if line is not None else source
        count = len(exc.errors())
        more = f" (and {count - 1} more problem{'s' if count > 2 else ''})" if count > 1 else ""
        raise InvalidInput(f"{first['msg']}{more}", source=where, field=field) from exc


def load_model(model: type[M], path: Path) -> M:
    data, node = read_document(path)
    return validate(model, data, source=str(path), node=node)
