"""YAML loading for cassettes and the manifest: safe tags only, and no anchors or aliases.

Aliases let a few lines of YAML stand for billions of nodes ("billion laughs"),
which exhausts memory as soon as anything walks the result. Neither go-vcr nor
our writers emit them, so any anchor or alias is refused before the document
is built. The check scans the parser's event stream, so it works unchanged
with the C loader (``yaml.CSafeLoader``) once ``LOADER`` names it.
"""

from __future__ import annotations

import yaml

LOADER = yaml.SafeLoader


class AliasRefusedError(yaml.YAMLError):
    """A YAML anchor or alias; ``problem_mark`` says where, like PyYAML's own errors."""

    def __init__(self, problem: str, problem_mark) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = problem_mark


def load_yaml(text: str) -> object:
    """The document in ``text``; ``yaml.YAMLError`` (with ``problem_mark``) for malformed YAML or any alias."""
    refuse_aliases(text)
    return yaml.load(text, Loader=LOADER)  # noqa: S506 - LOADER is a safe loader


def refuse_aliases(text: str) -> None:
    """Raise ``AliasRefusedError`` at the first anchor (``&x``) or alias (``*x``)."""
    for event in yaml.parse(text, Loader=LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise AliasRefusedError(f"YAML alias '*{event.anchor}' is not allowed", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise AliasRefusedError(f"YAML anchor '&{event.anchor}' is not allowed", event.start_mark)
