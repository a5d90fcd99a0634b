"""YAML loading for cassettes and the manifest: safe tags only, and no anchors or aliases.

Aliases let a few lines of YAML stand for billions of nodes ("billion laughs"),
which exhausts memory as soon as anything walks the result. Neither go-vcr nor
our writers emit them, so any anchor or alias is refused before the document
is built. With PyYAML's Python loader the check runs inside the one parse
(``AliasRefusingSafeLoader``); any other loader, such as the C one
(``yaml.CSafeLoader``) once ``LOADER`` names it, gets a scan of the event
stream first, so the check stays whichever loader parses.
"""

from __future__ import annotations

import yaml



class AliasRefusedError(yaml.YAMLError):
    """A YAML anchor or alias; ``problem_mark`` says where, like PyYAML's own errors."""

    def __init__(self, problem: str, problem_mark) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = problem_mark


def _refuse(event: yaml.Event) -> None:
    if isinstance(event, yaml.AliasEvent):
        raise AliasRefusedError(f"YAML alias '*{event.anchor}' is not allowed", event.start_mark)
    if getattr(event, "anchor", None) is not None:
        raise AliasRefusedError(f"YAML anchor '&{event.anchor}' is not allowed", event.start_mark)


class AliasRefusingSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing each anchor and alias as it composes the node."""

    def compose_node(self, parent, index):
        _refuse(self.peek_event())
        return super().compose_node(parent, index)


LOADER: type = AliasRefusingSafeLoader
"""The loader of cassettes and the manifest; a safe one (``yaml.CSafeLoader`` works too)."""


def load_yaml(text: str) -> object:
    """The document in ``text``; ``yaml.YAMLError`` (with ``problem_mark``) for malformed YAML or any alias."""
    if not issubclass(LOADER, AliasRefusingSafeLoader):
        refuse_aliases(text)
    return yaml.load(text, Loader=LOADER)  # noqa: S506 - LOADER is a safe loader


def refuse_aliases(text: str) -> None:
    """Raise ``AliasRefusedError`` at the first anchor (``&x``) or alias (``*x``), scanning the events only."""
    for event in yaml.parse(text, Loader=LOADER):
        _refuse(event)
