"""A minimal, safe XML reader shared by the account and response parsers.

We parse with pyexpat directly instead of `xml.etree` so that we can refuse any DOCTYPE: with no
DTD there are no entity declarations, so no entity expansion attacks, and no external fetches.
The result is a tiny immutable tree, enough for flat Acrobits documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from xml.parsers import expat

MAX_DEPTH = 64
"""Acrobits documents are flat; a deeper one is refused, which also bounds the cost of text walks."""


class XmlRefused(ValueError):
    """The document is not well-formed or carries a DTD."""


@dataclass(frozen=True)
class Element:
    tag: str
    text: str
    children: tuple[Element, ...]

    # Both walks use an explicit stack: a hostile, deeply nested body must not hit the recursion limit.

    def iter(self) -> Iterator[Element]:
        """This element and all its descendants, in document order."""
        stack: list[Element] = [self]
        while stack:
            element = stack.pop()
            yield element
            stack.extend(reversed(element.children))

    def all_text(self) -> str:
        """The element's own text followed by its descendants' texts, in document order."""
        return "".join(element.text for element in self.iter())


@dataclass
class _Building:
    tag: str
    text: list[str]
    children: list[Element]


def parse_xml(data: bytes | str) -> Element:
    """Parse a document; raises XmlRefused on any error or on a DOCTYPE."""
    parser = expat.ParserCreate()
    stack: list[_Building] = []
    roots: list[Element] = []

    def refuse_doctype(*_args: object) -> None:
        raise XmlRefused("DOCTYPE/DTD declarations are not allowed")

    def start(tag: str, _attrs: dict[str, str]) -> None:
        if len(stack) >= MAX_DEPTH:
            raise XmlRefused(f"nested deeper than {MAX_DEPTH} elements")
        stack.append(_Building(tag, [], []))

    def end(_tag: str) -> None:
        done = stack.pop()
        element = Element(done.tag, "".join(done.text), tuple(done.children))
        (stack[-1].children if stack else roots).append(element)

    def chars(text: str) -> None:
        if stack:
            stack[-1].text.append(text)

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_doctype
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XmlRefused(str(exc)) from None
    except (ValueError, LookupError) as exc:  # bad encoding declarations end up here
        raise XmlRefused(str(exc)) from None
    if not roots:
        raise XmlRefused("no root element")
    return roots[0]
