"""Load YAML that people edit by hand and validate it against a JSON Schema.

Errors name the file, the line and the reason, in words that never quote a (possibly secret)
value back. Policy files (policy.py) and the proxy configuration (settings.py) both use this.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from redactor.errors import ConfigError, file_problem

ErrorFactory = Callable[[str, "int | None", str], ConfigError]


class YamlFileError(ConfigError):
    """A configuration file does not parse or breaks its schema."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source, self.line, self.reason = source, line, reason
        where = f"{source} line {line}" if line else source
        super().__init__(f"{where}: {reason}")


def check_keys(node: yaml.Node, source: str, error: ErrorFactory) -> None:
    """Refuse duplicate and non-string keys: PyYAML keeps the last duplicate silently."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                # YAML 1.1 reads `yes`, `on`, `1` as bool/int keys: quote them to mean a name.
                raise error(source, line, "keys must be strings (quote the key)")
            if key_node.value in seen:
                raise error(source, line, f"duplicate key '{key_node.value}'")
            seen.add(key_node.value)
            check_keys(value_node, source, error)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            check_keys(item, source, error)


def node_at(root: yaml.Node, path: list[str | int], key: str | None = None) -> yaml.Node:
    """The deepest node along a path (the key node itself when `key` is given)."""
    node = root
    for part in [*path, key] if key is not None else path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    node = key_node if part is key else value_node
                    break
            else:
                break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            break
    return node


def describe(error: jsonschema.ValidationError) -> tuple[str, str | None]:
    """A reason built from the schema (never jsonschema's text, which quotes the value), and
    the offending key when the error is about a key rather than a value."""
    rule, expected = error.validator, error.validator_value
    custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    if custom:
        return custom, None
    instance = error.instance
    if rule == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(str(k) for k in instance if k not in allowed)
        if extra:
            hint = f"; allowed: {', '.join(sorted(allowed))}" if allowed else ""
            return f"unknown key '{extra[0]}'{hint}", extra[0]
    if rule == "required" and isinstance(instance, dict):
        missing = [k for k in expected if k not in instance]
        return f"missing required key '{missing[0] if missing else expected[0]}'", None
    if "propertyNames" in error.absolute_schema_path and isinstance(instance, str):
        # jsonschema reports a bad key name at its mapping; point at the key itself.
        return (
            f"name '{instance}' is not allowed: use letters, digits and _ . : / @ -",
            instance,
        )
    messages = {
        "enum": lambda: f"must be one of: {', '.join(map(str, expected))}",
        "const": lambda: f"must be {json.dumps(expected)}",
        "type": lambda: f"must be of type {expected}",
        "minimum": lambda: f"must be at least {expected}",
        "maximum": lambda: f"must be at most {expected}",
        "minLength": lambda: f"must have at least {expected} characters",
        "maxLength": lambda: f"must have at most {expected} characters",
        "pattern": lambda: f"must match the pattern {expected}",
        "minItems": lambda: f"must have at least {expected} items",
        "uniqueItems": lambda: "must not repeat items",
    }
    describe = messages.get(rule)
    return (describe() if describe else f"breaks the schema rule '{rule}'"), None


def schema_error(
    error: jsonschema.ValidationError, root: yaml.Node, source: str, factory: ErrorFactory
) -> ConfigError:
    """The error for a schema violation, pointing at the offending line."""
    reason, key = describe(error)
    path = list(error.absolute_path)
    node = node_at(root, path, key)
    where = ".".join(str(p) for p in [*path, key] if p is not None) or "(top level)"
    return factory(source, node.start_mark.line + 1, f"{where}: {reason}")


def parse_yaml(
    text: str, validator: jsonschema.Validator, source: str, error: ErrorFactory
) -> tuple[yaml.Node, Any]:
    """Parse YAML `text` and validate it; returns (node tree, data).

    Raises `error(source, line, reason)` when it is not YAML, has bad keys or breaks the schema.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise error(source, line, f"not valid YAML: {exc.problem}") from None
    except yaml.YAMLError:
        raise error(source, None, "not valid YAML") from None
    if root is None:
        raise error(source, 1, "file is empty")
    check_keys(root, source, error)
    data = yaml.safe_load(text)
    violation = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if violation is not None:
        raise schema_error(violation, root, source, error)
    return root, data


def load_yaml_file(path: Path, schema_path: Path) -> Any:
    """Read, parse and validate a YAML file. Raises YamlFileError naming file, line, reason."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlFileError(
            str(path), None, file_problem("file", exc).removeprefix("file ")
        ) from None
    validator = jsonschema.Draft202012Validator(json.loads(schema_path.read_text(encoding="utf-8")))
    return parse_yaml(text, validator, str(path), YamlFileError)[1]


def yaml_file_problems(
    path: Path, schema_path: Path
) -> tuple[Any, yaml.Node | None, list[ConfigError]]:
    """Every problem of a YAML file at once (for `redactor config check`): (data, node tree,
    problems). Data is None when the file cannot be read or parsed; schema violations are
    all listed, each with its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = file_problem("file", exc).removeprefix("file ")
        return None, None, [YamlFileError(str(path), None, problem)]
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is None:
            return None, None, [YamlFileError(str(path), 1, "file is empty")]
        check_keys(root, str(path), YamlFileError)
        data = yaml.safe_load(text)
    except ConfigError as exc:
        return None, None, [exc]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, None, [YamlFileError(str(path), line, f"not valid YAML: {exc.problem}")]
    except yaml.YAMLError:
        return None, None, [YamlFileError(str(path), None, "not valid YAML")]
    validator = jsonschema.Draft202012Validator(json.loads(schema_path.read_text(encoding="utf-8")))
    problems = [
        schema_error(error, root, str(path), YamlFileError)
        for error in sorted(
            validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))
        )
    ]
    return data, root, problems
