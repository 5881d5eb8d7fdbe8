"""Reads a recipe YAML file into plain values plus the line of every key and list item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from content.domain.recipe import Path_, Recipe, RecipeError, parse_recipes


def _plain(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _plain(value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*path, i), lines) for i, item in enumerate(node.value)]
    # Scalars: let the safe loader decide the type (numbers, null, booleans, text).
    return yaml.safe_load(yaml.serialize(node)) if node.tag != "tag:yaml.org,2002:str" else node.value


def load_recipes(path: Path) -> list[Recipe]:
    """Parse and validate ``path``; every error names the file and the line."""
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(str(path), None, "文件不存在") from None
    except UnicodeDecodeError:
        raise RecipeError(name, None, "不是 UTF-8 编码的文本") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise RecipeError(name, mark.line + 1 if mark else None, f"YAML 格式错误（{error.problem}）") from None
    if node is None:
        raise RecipeError(name, None, "文件是空的")
    lines: dict[Path_, int] = {}
    data = _plain(node, (), lines)
    return parse_recipes(data, lines, name)
