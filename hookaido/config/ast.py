"""The syntax tree of a Hookaidofile: directives with values, blocks, places and comments.

The parser produces it, ``config fmt`` prints it back, and the compiler reads it. Every
top-level item is a ``Directive``:

- a global block: ``name`` is the block name (``ingress``, ``pull_api``, ...);
- a named matcher ``@gh { ... }``: ``name`` is ``"matcher"``, ``args`` is ``[Value("gh")]``;
- a route ``/p { ... }``: ``name`` is ``"route"``, ``args`` is ``[Value("/p")]`` and
  ``channel`` is ``inbound``/``outbound``/``internal`` when written in (or as) a channel,
  ``None`` for a bare top-level route (implicitly inbound). Channel wrappers are flattened.

Inside blocks, a directive's ``name`` is its keyword (``auth``, ``deliver``, ``publish.direct``)
and ``args`` every value after it (``auth hmac env:X`` has args ``hmac``, ``env:X``).
"""

from dataclasses import dataclass, field

from hookaido.errors import Location


@dataclass
class Value:
    text: str  # with quotes removed and escapes applied
    quoted: bool
    location: Location
    written: str | None = None  # the text as written when placeholders were filled in


@dataclass
class Directive:
    name: str
    args: list[Value]
    block: list["Directive"] | None
    location: Location
    channel: str | None = None
    comments: list[str] = field(default_factory=list)  # own-line comments just before it
    trailing_comment: str | None = None  # comment at the end of its line
    closing_comments: list[str] = field(default_factory=list)  # own-line comments before "}"
    closing_trailing_comment: str | None = None  # comment after "}" on the same line


@dataclass
class Document:
    file: str
    items: list[Directive]
    trailing_comments: list[str] = field(default_factory=list)  # comments after the last item
