"""``config fmt``: print a syntax tree in canonical form (order, indentation, quoting),
keeping comments and unresolved placeholders. Idempotent; adds no defaults."""

from dataclasses import replace

from hookaido.config import directives as d
from hookaido.config.ast import Directive, Document, Value

INDENT = "  "
_NEEDS_QUOTES = set(' \t\n\r{}"#;')
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_GLOBAL_ORDER = {name: index for index, name in enumerate(d.GLOBAL_BLOCKS)}


def format_value(value: Value) -> str:
    """A value as written canonically: quoted when it was, or when a bare word would not
    read back as the same single value."""
    text = value.text
    if not value.quoted and text and not (_NEEDS_QUOTES & set(text)):
        return text
    if not value.quoted and _is_bare_placeholder(text):
        return text
    return '"' + "".join(_ESCAPES.get(char, char) for char in text) + '"'


def _is_bare_placeholder(text: str) -> bool:
    return (
        len(text) >= 2
        and text.startswith("{")
        and text.endswith("}")
        and not any(char in text for char in " \t\n\r")
    )


def top_level_order(items: list[Directive]) -> list[Directive]:
    """Global blocks in canonical order, then named matchers, then routes (file order)."""

    def key(item: Directive):
        if item.name in _GLOBAL_ORDER:
            return (0, _GLOBAL_ORDER[item.name])
        if item.name == "matcher":
            return (1, 0)
        return (2, 0)

    return sorted(items, key=key)


def route_key(directive: Directive) -> str:
    if directive.name == "match":
        return "match {}" if directive.block is not None else "match @"
    if directive.name == "auth":
        kind = directive.args[0].text if directive.args else ""
        return f"auth {kind}" if f"auth {kind}" in d.ROUTE_ORDER else "auth *"
    return directive.name


def deliver_key(directive: Directive) -> str:
    if directive.name == "sign":
        kind = directive.args[0].text if directive.args else ""
        return f"sign {kind}" if f"sign {kind}" in d.DELIVER_ORDER else "sign *"
    return directive.name


def _ordered(items: list[Directive], order: tuple, key) -> list[Directive]:
    rank = {name: index for index, name in enumerate(order)}
    return sorted(items, key=lambda item: rank.get(key(item), len(order)))


def canonical_children(parent: Directive, within: str | None = None) -> list[Directive]:
    """The block of ``parent`` in the order ``config fmt`` writes it; ``within`` is the name
    of the directive whose block holds ``parent``."""
    block = parent.block or []
    if parent.name == "route":
        return _ordered([_hmac_with_options_as_block(c) for c in block], d.ROUTE_ORDER, route_key)
    if parent.name == "deliver" and within == "route":
        return _ordered(block, d.DELIVER_ORDER, deliver_key)
    return list(block)


def _hmac_with_options_as_block(directive: Directive) -> Directive:
    """``auth hmac <ref> { opts }`` and ``auth hmac secret_ref <ID> { opts }`` written as the
    block form, the secret first: once options are given, the block is the canonical form."""
    args = directive.args
    if directive.name != "auth" or directive.block is None or len(args) < 2:
        return directive
    if args[0].text != "hmac" or args[0].quoted:
        return directive
    if args[1].text == "secret_ref" and not args[1].quoted:
        secret = Directive("secret_ref", args[2:], None, args[1].location)
    else:
        secret = Directive("secret", args[1:], None, args[1].location)
    return replace(directive, args=args[:1], block=[secret, *directive.block])


class _Writer:
    def __init__(self):
        self.lines: list[str] = []

    def comments(self, comments: list[str], depth: int) -> None:
        for comment in comments:
            self.lines.append(INDENT * depth + comment)

    def directive(
        self, directive: Directive, depth: int, head: str | None = None, within: str | None = None
    ) -> None:
        self.comments(directive.comments, depth)
        if head is None:
            head = " ".join([directive.name, *(format_value(v) for v in directive.args)])
        trailing = f" {directive.trailing_comment}" if directive.trailing_comment else ""
        if directive.block is None:
            self.lines.append(INDENT * depth + head + trailing)
            return
        closing = directive.closing_trailing_comment
        after = f" {closing}" if closing else ""
        children = canonical_children(directive, within)
        if not children and not directive.closing_comments:
            both = " ".join(text for text in (directive.trailing_comment, closing) if text)
            self.lines.append(INDENT * depth + head + " {}" + (f" {both}" if both else ""))
            return
        self.lines.append(INDENT * depth + head + " {" + trailing)
        for child in children:
            self.directive(child, depth + 1, within=directive.name)
        self.comments(directive.closing_comments, depth + 1)
        self.lines.append(INDENT * depth + "}" + after)

    def route(self, route: Directive, depth: int, prefix: str = "") -> None:
        path = format_value(route.args[0]) if route.args else '""'
        self.directive(route, depth, head=prefix + path)

    def top_level(self, item: Directive) -> None:
        if item.name == "matcher":
            self.directive(item, 0, head="@" + (item.args[0].text if item.args else ""))
        else:
            self.directive(item, 0)


def format_document(doc: Document) -> str:
    """The canonical text of ``doc``: LF endings, two-space indentation, one trailing newline."""
    writer = _Writer()
    ordered = top_level_order(doc.items)
    index = 0
    first = True
    while index < len(ordered):
        item = ordered[index]
        if not first:
            writer.lines.append("")
        first = False
        if item.name != "route":
            writer.top_level(item)
            index += 1
            continue
        if item.channel is None:
            writer.route(item, 0)
            index += 1
            continue
        group = [item]
        while (
            index + len(group) < len(ordered)
            and ordered[index + len(group)].name == "route"
            and ordered[index + len(group)].channel == item.channel
        ):
            group.append(ordered[index + len(group)])
        index += len(group)
        if len(group) == 1:
            writer.route(item, 0, prefix=f"{item.channel} ")
            continue
        writer.lines.append(f"{item.channel} {{")
        for route in group:
            writer.route(route, 1)
        writer.lines.append("}")
    if doc.trailing_comments:
        if not first:
            writer.lines.append("")
        writer.comments(doc.trailing_comments, 0)
    return "\n".join(writer.lines) + "\n"
