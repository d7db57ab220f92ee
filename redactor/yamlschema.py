"""Load a YAML file and validate it against a JSON Schema, reporting file, line and reason.

Security teams and platform teams edit these files by hand: an error must say where, in words
that never quote a (possibly secret) value back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from redactor.errors import ConfigError


class YamlFileError(ConfigError):
    """A configuration file does not parse or breaks its schema."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source, self.line, self.reason = source, line, reason
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")


def _check_keys(node: yaml.Node, source: str) -> None:
    # PyYAML silently keeps the last of two equal keys, and YAML 1.1 reads `on`/`yes` as
    # booleans: both are typos a reviewer would miss, so refuse them.
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise YamlFileError(source, line, "keys must be strings (quote the key)")
            if key_node.value in seen:
                raise YamlFileError(source, line, f"duplicate key '{key_node.value}'")
            seen.add(key_node.value)
            _check_keys(value_node, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_keys(item, source)


def _node_at(root: yaml.Node, path: list[str | int]) -> yaml.Node:
    node = root
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                break
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
    return node


def _reason(error: jsonschema.ValidationError) -> str:
    rule, expected, instance = error.validator, error.validator_value, error.instance
    if rule == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(str(k) for k in instance if k not in allowed)
        return f"unknown key '{extra[0]}' (allowed: {', '.join(sorted(allowed))})"
    if rule == "required" and isinstance(instance, dict):
        missing = [k for k in expected if k not in instance]
        return f"missing required key '{missing[0]}'"
    messages = {
        "enum": lambda: f"must be one of: {', '.join(map(str, expected))}",
        "type": lambda: f"must be of type {expected}",
        "minimum": lambda: f"must be at least {expected}",
        "maximum": lambda: f"must be at most {expected}",
        "minLength": lambda: f"must have at least {expected} characters",
        "pattern": lambda: f"must match the pattern {expected}",
        "minItems": lambda: f"must have at least {expected} items",
    }
    describe = messages.get(rule)
    # Never jsonschema's own message: it quotes the offending value.
    return describe() if describe else f"breaks the schema rule '{rule}'"


def load_yaml(text: str, schema: dict[str, Any], source: str) -> Any:
    """Parse YAML `text` and validate it. Raises YamlFileError naming `source`, line and reason."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise YamlFileError(source, line, f"not valid YAML ({exc.problem})") from None
    except yaml.YAMLError:
        raise YamlFileError(source, None, "not valid YAML") from None
    if root is None:
        raise YamlFileError(source, 1, "the file is empty")
    _check_keys(root, source)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        path = list(error.absolute_path)
        node = _node_at(root, path)
        where = ".".join(str(p) for p in path) or "(top level)"
        raise YamlFileError(source, node.start_mark.line + 1, f"{where}: {_reason(error)}")
    return data


def load_yaml_file(path: Path, schema_path: Path) -> Any:
    """`load_yaml` on a file. Raises YamlFileError when it cannot be read or is invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlFileError(str(path), None, f"cannot read the file ({exc.strerror})") from None
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    return load_yaml(text, schema, str(path))
