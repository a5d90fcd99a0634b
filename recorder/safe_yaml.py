"""YAML loading for cassettes and the manifest: safe tags only, and no anchors or aliases.

Aliases let a few lines of YAML stand for billions of nodes ("billion laughs"),
which exhausts memory as soon as anything walks the result. Neither go-vcr nor
our writers emit them, so any anchor or alias is refused before the document
is built.

Parsing uses LibYAML (``yaml.CSafeLoader``, about 30 times faster than
PyYAML's Python loader); where PyYAML was built without it, the Python loader
is used, with one warning. The Python loader refuses anchors inside its one
parse (``AliasRefusingSafeLoader``); any other loader gets a scan of the event
stream first, and only when the text holds an ``&`` or ``*`` where a YAML token
can start (after a space, a line break, a flow indicator or at the start), so
the check costs nothing for the usual file and stays whichever loader parses.
"""

from __future__ import annotations

import re
import warnings

import yaml

from testopeninference.errors import AliasRefusedError


def _refuse(event: yaml.Event) -> None:
    if isinstance(event, yaml.AliasEvent):
        raise AliasRefusedError(f"YAML alias '*{event.anchor}' is not allowed", event.start_mark)
    anchor = getattr(event, "anchor", None)  # a node event's (scalar, sequence or mapping start)
    if anchor is not None:
        raise AliasRefusedError(f"YAML anchor '&{anchor}' is not allowed", event.start_mark)


class AliasRefusingSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing each anchor and alias as it composes the node."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        _refuse(self.peek_event())  # type: ignore[no-untyped-call]  # PyYAML's stubs leave it unannotated
        return super().compose_node(parent, index)


LOADER: type = getattr(yaml, "CSafeLoader", AliasRefusingSafeLoader)
"""The loader of cassettes and the manifest: LibYAML's safe loader, else the Python one."""

_FALLBACK_WARNING = ("PyYAML has no LibYAML (yaml.CSafeLoader): cassettes are parsed by the pure-Python "
                     "loader, about 30 times slower; install PyYAML with LibYAML for fast reads.")
_warned = False

# An anchor or alias token can only start a node: at the start, after white space (YAML 1.1 line breaks
# included), after a flow indicator or a flow value's ':', or after a byte-order mark. An '&' or '*'
# after anything else is inside a scalar, or the parse fails anyway.
_POSSIBLE_ANCHOR = re.compile("(?:^|(?<=[\\s\\[\\]{},:?\ufeff\x85\u2028\u2029-]))[&*]")


def load_yaml(text: str) -> object:
    """The document in ``text``; ``yaml.YAMLError`` (with ``problem_mark``) for malformed YAML or any alias."""
    loader = LOADER
    if issubclass(loader, AliasRefusingSafeLoader):
        _warn_once(loader)
    elif _POSSIBLE_ANCHOR.search(text):
        refuse_aliases(text)
    return yaml.load(text, Loader=loader)  # noqa: S506 - LOADER is a safe loader


def refuse_aliases(text: str) -> None:
    """Raise ``AliasRefusedError`` at the first anchor (``&x``) or alias (``*x``), scanning the events only."""
    for event in yaml.parse(text, Loader=LOADER):
        _refuse(event)


def _warn_once(loader: type) -> None:
    global _warned
    if not _warned and not hasattr(yaml, "CSafeLoader"):
        _warned = True
        warnings.warn(_FALLBACK_WARNING, RuntimeWarning, stacklevel=3)
