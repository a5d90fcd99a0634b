"""Each attribute key against the OpenInference catalogue: known key, right value type, right list layout.

The conventions flatten a "List of objects" as ``<prefix>.<index>.<item key>`` with zero-based indices
("All list-based attributes use zero-based indexing in their flattened form", semantic conventions,
"Indexed Attribute Prefixes"), nested as deep as the objects are
(``llm.input_messages.0.message.contents.1.message_content.image.image.url``). So under a known prefix
every key has exactly one reading, and a key with no reading is a mistake worth naming: a misspelt
item key, a vector split into ``embedding.vector.N``, a list set as one JSON attribute. Keys outside
the catalogue's namespaces are the gateway's own and are left alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from testopeninference.openinference_keys import (
    CLOSED_NAMESPACES,
    OPEN_PREFIXES,
    SPAN_KEYS,
    Field,
    ListOf,
    ValueType,
    value_problem,
)

Indices = dict[str, set[int]]
"""Each concrete list (``llm.input_messages``, ``llm.input_messages.0.message.contents``) and the indices seen."""


def layout_problems(attributes: Mapping[str, AnyValue]) -> list[str]:
    """Problems with the keys and value types of a span's attributes, one line each, in attribute order."""
    indices: Indices = defaultdict(set)
    problems: list[str] = []
    for key, value in attributes.items():
        problems += _key_problems(key, key, SPAN_KEYS, value, indices, container=None)
    return problems + _index_problems(indices)


def _key_problems(
    key: str, rest: str, schema: Mapping[str, Field], value: AnyValue, indices: Indices, container: str | None
) -> list[str]:
    """Read ``rest`` (the end of ``key``) against ``schema``, the keys of the span or of one list item."""
    field = schema.get(rest)
    if isinstance(field, ValueType):
        problem = value_problem(value, field)
        return [f"{key}: {problem}"] if problem else []
    if isinstance(field, ListOf):
        return [f"{key}: a list of objects must be flattened with indices ({key}.0.…), not set as one attribute"]
    for name, known in schema.items():
        if rest.startswith(name + "."):
            tail = rest[len(name) + 1 :]
            base = key[: len(key) - len(tail) - 1]
            if isinstance(known, ListOf):
                return _item_problems(key, base, tail, known, value, indices)
            return [f"{key}: unknown key under {base} ({base} is one attribute: {known.value})"]
    if container is None:
        return _namespace_problems(key, value)
    expected = ", ".join(sorted(schema))
    return [f"{key}: unknown key in an item of {container} (known: {expected})"]


def _item_problems(key: str, base: str, tail: str, items: ListOf, value: AnyValue, indices: Indices) -> list[str]:
    index, _, item_key = tail.partition(".")
    if not (index.isascii() and index.isdigit() and (index == "0" or not index.startswith("0"))):
        return [f"{key}: {index!r} after {base} is not a list index (0, 1, 2, …)"]
    indices[base].add(int(index))
    if not item_key:
        return [f"{key}: item {index} of {base} must be flattened further ({key}.<item key>)"]
    return _key_problems(key, item_key, items.item, value, indices, container=base)


def _namespace_problems(key: str, value: AnyValue) -> list[str]:
    """Keys under the token-count and cost namespaces: open detail prefixes, else a misspelling."""
    for prefix, expected in OPEN_PREFIXES.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            problem = value_problem(value, expected)
            return [f"{key}: {problem}"] if problem else []
    for namespace in CLOSED_NAMESPACES:
        if key.startswith(namespace):
            known = sorted(name for name in SPAN_KEYS if name.startswith(namespace))
            details = [prefix + "*" for prefix in OPEN_PREFIXES if prefix.startswith(namespace)]
            return [f"{key}: unknown key in {namespace}* (known: {', '.join(known + details)})"]
    return []


def _index_problems(indices: Indices) -> list[str]:
    problems = []
    for base, seen in indices.items():
        missing = sorted(set(range(max(seen) + 1)) - seen)
        if missing:
            listed = ", ".join(map(str, sorted(seen)))
            problems.append(f"{base}: indices {listed} are not contiguous from 0 (missing {', '.join(map(str, missing))})")
    return problems
