"""Hookaidofile text to syntax tree (``hookaido.config.ast``); raises only ``ConfigError``.

lark tokenises the text and matches the braces; the directive table then decides which
values belong to which directive, since newlines carry no meaning. No semantics here.
"""

import re
from functools import cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput

from hookaido.config import directives as d
from hookaido.config.ast import Directive, Document, Value
from hookaido.errors import ConfigError, Location

_GRAMMAR = Path(__file__).with_name("hookaidofile.lark")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_FREE = object()  # block of a plugin without schema: any name, one value or a nested block


@cache
def _lark() -> Lark:
    return Lark(_GRAMMAR.read_text(encoding="utf-8"), parser="lalr", lexer="basic")


def parse_file(path, registry=None) -> Document:
    """Read and parse a Hookaidofile; unreadable or non-UTF-8 files raise ``ConfigError``."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {name}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        line_start = before.rfind(b"\n") + 1
        column = len(before[line_start:].decode("utf-8", errors="replace")) + 1
        bad = raw[exc.start]
        raise ConfigError(
            f"invalid UTF-8 (byte 0x{bad:02x}); the file must be UTF-8 encoded",
            Location(name, line, column),
        ) from None
    return parse_text(text, name, registry=registry)


def parse_text(text: str, file: str, registry=None) -> Document:
    """Parse Hookaidofile text. ``registry`` supplies plugin directive tables (loaded lazily
    from the installed plugins when omitted and a plugin's directive is met)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    _refuse_control_characters(text, file)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, file) from None
    except LarkError as exc:  # pragma: no cover - lark reports everything above
        raise ConfigError(f"cannot parse config: {exc}", Location(file, 1, 1)) from None
    except RecursionError:
        raise ConfigError("config nests too deeply", Location(file, 1, 1)) from None
    try:
        return _Builder(file, text, registry).document(tree.children)
    except RecursionError:
        raise ConfigError("config nests too deeply", Location(file, 1, 1)) from None


def _shown(char: str) -> str:
    """A character for a message: invisible ones escaped (``\\x01``)."""
    return char if char.isprintable() else repr(char)[1:-1]


def _refuse_control_characters(text: str, file: str) -> None:
    """Invisible characters outside quoted strings and comments are refused, located."""
    for line_number, line in enumerate(text.split("\n"), start=1):
        quoted = escaped = False
        for column, char in enumerate(line, start=1):
            if quoted:
                quoted = escaped or char != '"'
                escaped = not escaped and char == "\\"
                continue
            if char == "#":
                break
            if char == '"':
                quoted = True
            elif char != "\t" and (ord(char) < 32 or ord(char) == 127):
                raise ConfigError(
                    f'control character "{_shown(char)}" is not allowed here',
                    Location(file, line_number, column),
                )


_PLACEHOLDER_STARTS = ("$", "env.", "file.", "vars.")


def _tokens(text: str) -> list:
    try:
        return [token for token in _lark().lex(text) if token.type != "COMMENT"]
    except LarkError:
        return []


def _unterminated_placeholder(tokens: list, file: str) -> ConfigError | None:
    """A ``{$X`` (or ``{env.``...) cut by a space lexes as a block: say what it is."""
    for index, token in enumerate(tokens[:-1]):
        after = tokens[index + 1]
        if (
            token.type == "LBRACE"
            and after.type == "WORD"
            and after.start_pos == token.end_pos
            and after.value.startswith(_PLACEHOLDER_STARTS)
        ):
            start = token
            before = tokens[index - 1] if index else None
            if before is not None and before.type == "WORD" and before.end_pos == token.start_pos:
                start = before
            return ConfigError(
                f'unterminated placeholder "{{{after.value}"; expected "}}" before the space'
                " that follows it",
                Location(file, start.line, start.column),
            )
    return None


def _block_missing(tokens: list, stray, file: str) -> ConfigError | None:
    """For a stray ``}``: the last top-level route or block name not followed by ``{``."""
    depth = 0
    suspect = None
    for index, token in enumerate(tokens):
        if token.start_pos >= stray.start_pos:
            break
        if token.type == "LBRACE":
            depth += 1
        elif token.type == "RBRACE":
            depth = max(depth - 1, 0)
        elif token.type == "WORD" and depth == 0:
            nxt = tokens[index + 1] if index + 1 < len(tokens) else None
            named = token.value.startswith("/") or token.value in d.GLOBAL_BLOCKS
            if named and (nxt is None or nxt.type != "LBRACE"):
                suspect = token
    if suspect is None:
        return None
    what = f"route {suspect.value}" if suspect.value.startswith("/") else suspect.value
    return ConfigError(
        f'{what} needs a block: expected "{{" after it (the "}}" at'
        f" {stray.line}:{stray.column} closes no block)",
        Location(file, suspect.line, suspect.column),
    )


def _syntax_error(exc: UnexpectedInput, text: str, file: str) -> ConfigError:
    if (
        isinstance(exc, UnexpectedCharacters)
        and text[exc.pos_in_stream : exc.pos_in_stream + 1] == '"'
    ):
        return ConfigError(
            "unterminated string; expected a closing '\"' on the same line",
            Location(file, exc.line, exc.column),
        )
    token = getattr(exc, "token", None)
    tokens = _tokens(text)
    placeholder = _unterminated_placeholder(tokens, file)
    if placeholder is not None:
        return placeholder
    if token is not None and token.type == "RBRACE":
        missing = _block_missing(tokens, token, file)
        if missing is not None:
            return missing
        return ConfigError(
            'unexpected "}": no block is open here', Location(file, token.line, token.column)
        )
    opened = _unclosed_brace(text)
    if opened is not None:
        return ConfigError(
            f'unexpected end of file; expected "}}" to close the block opened at '
            f"{opened[0]}:{opened[1]}",
            _end_location(text, file),
        )
    line = getattr(exc, "line", 1) or 1
    column = getattr(exc, "column", 1) or 1
    return ConfigError("cannot parse config here", Location(file, line, column))


def _unclosed_brace(text: str):
    stack = []
    try:
        for token in _lark().lex(text):
            if token.type == "LBRACE":
                stack.append((token.line, token.column))
            elif token.type == "RBRACE" and stack:
                stack.pop()
    except LarkError:
        return None
    return stack[-1] if stack else None


def _end_location(text: str, file: str) -> Location:
    lines = text.split("\n")
    return Location(file, len(lines), len(lines[-1]) + 1)


def unescape(raw: str) -> str:
    """The text of a quoted string token (quotes included) with its escapes applied."""
    body = raw[1:-1]
    out = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(_ESCAPES.get(nxt, char + nxt))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _describe(node) -> str:
    if node is None:
        return "end of block"
    if isinstance(node, Tree):
        return '"{"'
    if node.type == "STRING":
        return f"quoted string {node.value}"
    if node.type == "COMMENT":
        return "a comment"
    return '"' + "".join(_shown(char) for char in node.value) + '"'


class _Nodes:
    """A cursor over the children of one block (words, strings, comments, nested blocks)."""

    def __init__(self, nodes, end: Location, closing: str = '"}"'):
        self.nodes = nodes
        self.index = 0
        self.end = end  # where the "}" (or the end of the file) is
        self.closing = closing  # what ends these nodes: "}" or the end of the file

    def peek(self, skip_comments: bool = False):
        index = self.index
        while index < len(self.nodes):
            node = self.nodes[index]
            if not (skip_comments and isinstance(node, Token) and node.type == "COMMENT"):
                return node
            index += 1
        return None

    def take(self):
        node = self.nodes[self.index]
        self.index += 1
        return node


def _is_value(node) -> bool:
    return isinstance(node, Token) and node.type in ("WORD", "STRING")


def _is_comment(node) -> bool:
    return isinstance(node, Token) and node.type == "COMMENT"


def _is_block(node) -> bool:
    return isinstance(node, Tree)


def _inner(block: Tree) -> list:
    return block.children[1:-1]


def _placeholder_hint(block: Tree) -> str:
    """For a block that holds a single word, such as ``{evn.TOKEN}``: most likely a mistyped
    placeholder, which the lexer could not tell from a block."""
    from hookaido.config.placeholders import KNOWN_FORMS

    words = [token for token in _inner(block) if isinstance(token, Token)]
    if len(words) != 1 or words[0].type != "WORD" or len(_inner(block)) != 1:
        return ""
    return f' (is "{{{words[0].value}}}" a mistyped placeholder? Placeholders are {KNOWN_FORMS})'


class _Builder:
    def __init__(self, file: str, text: str, registry):
        self.file = file
        self.text = text
        self.registry = registry
        self._tables = None

    # -- helpers -------------------------------------------------------------------------

    def loc(self, node) -> Location:
        if isinstance(node, Tree):
            node = node.children[0]
        return Location(self.file, node.line, node.column)

    def fail(self, message: str, where) -> ConfigError:
        location = where if isinstance(where, Location) else self.loc(where)
        return ConfigError(message, location)

    def value(self, token: Token) -> Value:
        if token.type == "STRING":
            return Value(unescape(token.value), True, self.loc(token))
        return Value(token.value, False, self.loc(token))

    def plugin_tables(self) -> d.PluginTables:
        if self._tables is None:
            registry = self.registry
            if registry is None:
                try:
                    from hookaido.plugins import registry as load

                    registry = load()
                except Exception:  # a broken plugin set leaves only the core directives
                    registry = None
            try:
                self._tables = d.plugin_tables(registry)
            except Exception:
                self._tables = d.PluginTables()
        return self._tables

    def block_end(self, block: Tree) -> Location:
        return self.loc(block.children[-1])

    # -- top level -----------------------------------------------------------------------

    def document(self, nodes) -> Document:
        cursor = _Nodes(nodes, _end_location(self.text, self.file), "end of file")
        items: list[Directive] = []
        seen_blocks: dict[str, Location] = {}
        seen_matchers: dict[str, Location] = {}
        pending: list[str] = []
        last: Directive | None = None
        last_line = 0
        statements = 0
        while (node := cursor.peek()) is not None:
            if _is_comment(node):
                cursor.take()
                if last is not None and node.line == last_line:
                    _add_after(last, node.value)
                else:
                    pending.append(_comment(node))
                continue
            parsed, end_line, leftover = self.top_item(cursor, seen_blocks, seen_matchers)
            statements += 1
            if not parsed:  # an empty channel wrapper: its comments go to what follows
                pending += leftover
                continue
            parsed[0].comments = pending + parsed[0].comments
            pending = leftover
            items.extend(parsed)
            last, last_line = parsed[-1], end_line
        if not statements:
            raise ConfigError(
                "empty config: expected at least one block or route", Location(self.file, 1, 1)
            )
        return Document(self.file, items, pending)

    def top_item(self, cursor, seen_blocks, seen_matchers):
        node = cursor.take()
        if _is_block(node):
            raise self.fail(
                'unexpected "{" at top level; expected a block name, @matcher, route path '
                "or channel before it",
                node,
            )
        if node.type == "WORD" and node.value in d.GLOBAL_BLOCKS:
            return [self.global_block(node, cursor, seen_blocks)], self._end_line(cursor), []
        if node.type == "WORD" and node.value.startswith("@"):
            return [self.matcher(node, cursor, seen_matchers)], self._end_line(cursor), []
        if node.type == "WORD" and node.value in d.CHANNELS:
            return self.channel(node, cursor)
        if _is_route_path(node):
            return [self.route(node, cursor, None)], self._end_line(cursor), []
        raise self.fail(
            f"unknown block {_describe(node)}; expected one of "
            f"{', '.join(d.GLOBAL_BLOCKS)}, a named matcher (@name), a route path (/...) "
            f"or a channel ({', '.join(d.CHANNELS)})",
            node,
        )

    @staticmethod
    def _end_line(cursor) -> int:
        node = cursor.nodes[cursor.index - 1]
        if isinstance(node, Tree):
            node = node.children[-1]
        return node.end_line or node.line

    def expect_block(self, cursor, owner: str):
        comments = []
        while _is_comment(cursor.peek()):
            comments.append(cursor.take())
        node = cursor.peek()
        if not _is_block(node):
            raise self.fail(
                f'{owner} needs a block: expected "{{", found {_closing(cursor, node)}',
                self.loc(node) if node is not None else cursor.end,
            )
        return cursor.take(), comments

    def global_block(self, name: Token, cursor, seen: dict) -> Directive:
        if name.value in seen:
            first = seen[name.value]
            raise self.fail(f"duplicate {name.value} block (first at {first})", name)
        seen[name.value] = self.loc(name)
        block, comments = self.expect_block(cursor, f"{name.value} block")
        directive = Directive(name.value, [], [], self.loc(name))
        self.attach_inner(directive, comments)
        spec = d.GLOBAL_BLOCKS[name.value]
        if spec.special == d.VARS:
            directive.block = self.vars_block(directive, block)
        else:
            directive.block = self.block(directive, block, spec.block, name.value)
        return directive

    def matcher(self, token: Token, cursor, seen: dict) -> Directive:
        name = token.value[1:]
        if not name:
            raise self.fail('named matcher needs a name: expected "@name {"', token)
        if name in seen:
            raise self.fail(f"duplicate named matcher @{name} (first at {seen[name]})", token)
        seen[name] = self.loc(token)
        block, comments = self.expect_block(cursor, f"named matcher @{name}")
        location = self.loc(token)
        directive = Directive(
            "matcher",
            [Value(name, False, Location(self.file, location.line, location.column + 1))],
            [],
            location,
        )
        self.attach_inner(directive, comments)
        directive.block = self.block(directive, block, d.MATCHER, f"matcher @{name}")
        return directive

    def channel(self, keyword: Token, cursor):
        channel = keyword.value
        comments = []
        while _is_comment(cursor.peek()):
            comments.append(_comment(cursor.take()))
        node = cursor.peek()
        if node is None or not (_is_block(node) or _is_route_path(node)):
            where = cursor.end if node is None else self.loc(node)
            raise self.fail(
                f'{channel} expects a route path or "{{", found {_closing(cursor, node)}', where
            )
        if _is_route_path(node):
            route = self.route(cursor.take(), cursor, channel)
            route.comments = comments + route.comments
            return [route], self._end_line(cursor), []
        wrapper = cursor.take()
        inner = _Nodes(_inner(wrapper), self.block_end(wrapper))
        routes: list[Directive] = []
        pending = comments
        last_line = 0
        while (node := inner.peek()) is not None:
            if _is_comment(node):
                inner.take()
                if routes and node.line == last_line:
                    _add_after(routes[-1], node.value)
                else:
                    pending.append(_comment(node))
                continue
            inner.take()
            if not _is_route_path(node):
                raise self.fail(
                    f"unexpected {_describe(node)} in {channel} block; expected a route path "
                    "(/...)",
                    node,
                )
            route = self.route(node, inner, channel)
            route.comments = pending + route.comments
            pending = []
            routes.append(route)
            last_line = self._end_line(inner)
        return routes, wrapper.children[-1].line, pending

    def route(self, path: Token, cursor, channel: str | None) -> Directive:
        path_value = self.value(path)
        block, comments = self.expect_block(cursor, f"route {path.value}")
        directive = Directive("route", [path_value], [], self.loc(path), channel=channel)
        self.attach_inner(directive, comments)
        directive.block = self.block(directive, block, d.ROUTE, f"route {path_value.text}")
        return directive

    def attach_inner(self, directive: Directive, comments) -> None:
        """Comments written between a directive's own words go before it, or at its end
        when they sit on its first line."""
        # Limitation: ``config fmt`` therefore moves a comment written between the values
        # of one directive to the line above it (the text is kept).
        for token in comments:
            if token.line == directive.location.line:
                _add_trailing(directive, token.value)
            else:
                directive.comments.append(_comment(token))

    # -- blocks --------------------------------------------------------------------------

    def statements(self, owner: Directive, block: Tree, read_one) -> list[Directive]:
        """The directives of ``block``, each read by ``read_one(cursor, seen)``, with the
        comments around them attached: own-line comments to the next directive (or to the
        closing brace), same-line comments to the directive they follow."""
        cursor = _Nodes(_inner(block), self.block_end(block))
        opening_line = block.children[0].line
        children: list[Directive] = []
        seen: dict[str, Location] = {}
        pending: list[str] = []
        last_line = None
        while (node := cursor.peek()) is not None:
            if _is_comment(node):
                cursor.take()
                if children and node.line == last_line:
                    _add_after(children[-1], node.value)
                elif not children and not pending and node.line == opening_line:
                    _add_trailing(owner, node.value)
                else:
                    pending.append(_comment(node))
                continue
            directive = read_one(cursor, seen)
            directive.comments = pending + directive.comments
            pending = []
            children.append(directive)
            last_line = self._end_line(cursor)
        owner.closing_comments = pending
        return children

    def block(self, owner: Directive, block: Tree, table, context: str) -> list[Directive]:
        def read_one(cursor, seen):
            directive, key, repeatable = self.directive(cursor, table, context)
            if not repeatable:
                if key in seen:
                    raise self.fail(
                        f"duplicate {key} in {context} (first at {seen[key]})",
                        directive.location,
                    )
                seen[key] = directive.location
            return directive

        return self.statements(owner, block, read_one)

    def vars_block(self, owner: Directive, block: Tree) -> list[Directive]:
        def read_one(cursor, seen):
            name = cursor.take()
            if not (isinstance(name, Token) and name.type == "WORD"):
                raise self.fail(f"expected a variable name in vars, found {_describe(name)}", name)
            if not _VAR_NAME.match(name.value):
                raise self.fail(
                    f'invalid variable name "{name.value}"; expected letters, digits and '
                    "_ not starting with a digit",
                    name,
                )
            if name.value in seen:
                raise self.fail(
                    f"duplicate variable {name.value} in vars (first at {seen[name.value]})",
                    name,
                )
            seen[name.value] = self.loc(name)
            directive = Directive(name.value, [], None, self.loc(name))
            inner: list[Token] = []
            directive.args = self.values(cursor, 1, f"variable {name.value}", inner)
            self.attach_inner(directive, inner)
            return directive

        return self.statements(owner, block, read_one)

    def free_block(self, owner: Directive, block: Tree, context: str) -> list[Directive]:
        """A block of a plugin that registered no schema: each directive takes one value
        or opens a nested block."""
        # Limitation: without a schema fragment a plugin option cannot take a list of
        # values; such a plugin must register a schema to get list options.

        def read_one(cursor, _seen):
            name = cursor.take()
            if not (isinstance(name, Token) and name.type == "WORD"):
                raise self.fail(
                    f"expected a directive name in {context}, found {_describe(name)}", name
                )
            directive = Directive(name.value, [], None, self.loc(name))
            if _is_block(cursor.peek()):
                nested = cursor.take()
                directive.block = self.free_block(directive, nested, f"{name.value} block")
            else:
                directive.args = self.values(cursor, 1, name.value, [])
            return directive

        return self.statements(owner, block, read_one)

    # -- directives ----------------------------------------------------------------------

    def directive(self, cursor, table: dict, context: str):
        """Parse one directive; return it, its duplicate-detection key and repeatability."""
        name = cursor.take()
        if _is_block(name):
            raise self.fail(
                f'unexpected "{{" in {context}; expected a directive name{_placeholder_hint(name)}',
                name,
            )
        spec = table.get(name.value) if name.type == "WORD" else None
        if spec is None and table is d.QUEUE and name.type == "WORD":
            spec = self.plugin_tables().backend_options.get(name.value)
        if spec is None:
            expected = ", ".join(sorted(table))
            what = "directive" if name.type == "WORD" else "directive name, found"
            raise self.fail(
                f"unknown {what} {_describe(name)} in {context}; expected one of: {expected}",
                name,
            )
        directive = Directive(name.value, [], None, self.loc(name))
        inner: list[Token] = []
        keywords = {key for key in table}
        key, repeatable = name.value, spec.repeatable
        if spec.special == d.AUTH:
            key = self.route_auth(directive, cursor, keywords, inner)
        elif spec.special == d.TOKEN_AUTH:
            self.token_auth(directive, cursor, inner)
        elif spec.special == d.SIGN:
            key, repeatable = self.sign(directive, cursor, keywords, inner)
        elif spec.special == d.DELIVER:
            self.deliver(directive, cursor, inner)
        elif spec.special == d.MATCH:
            key, repeatable = self.match(directive, cursor, inner)
        else:
            self.generic(directive, spec, cursor, keywords, inner)
        self.attach_inner(directive, inner)
        return directive, key, repeatable

    def generic(self, directive, spec: d.Spec, cursor, keywords, inner):
        label = directive.name
        if spec.either:
            if _is_block(cursor.peek(skip_comments=True)):
                self.take_block(directive, cursor, spec.block, inner, f"{label} block")
                return
            directive.args = self.values(cursor, spec.args, label, inner, keywords)
            return
        if spec.args:
            directive.args = self.values(cursor, spec.args, label, inner, keywords)
        if spec.block is not None:
            if spec.block_required:
                block, comments = self.expect_block(cursor, label)
                inner.extend(comments)
                directive.block = self.block(directive, block, spec.block, f"{label} block")
            elif _is_block(cursor.peek(skip_comments=True)):
                self.take_block(directive, cursor, spec.block, inner, f"{label} block")

    def take_block(self, directive, cursor, table, inner, context):
        while _is_comment(cursor.peek()):
            inner.append(cursor.take())
        block = cursor.take()
        if table is _FREE:
            directive.block = self.free_block(directive, block, context)
        else:
            directive.block = self.block(directive, block, table, context)

    def take_values(self, cursor, accepts, expectation: str) -> list[Value]:
        """Every value token at the cursor that ``accepts``, at least one; without one, a parse
        error: ``expectation``, then what was found instead."""
        taken = []
        while _is_value(cursor.peek()) and accepts(cursor.peek()):
            taken.append(self.value(cursor.take()))
        if not taken:
            node = cursor.peek()
            raise self.fail(
                f"{expectation}, found {_closing(cursor, node)}",
                self.loc(node) if node is not None else cursor.end,
            )
        return taken

    def values(self, cursor, count: int, label: str, inner, keywords=()) -> list[Value]:
        """Take ``count`` values (or every value up to the next directive when variadic)."""
        if count in (d.VARIADIC, d.PAIRS):
            taken = self.take_values(
                cursor,
                lambda node: not (node.type == "WORD" and node.value in keywords),
                f"{label} expects at least one value",
            )
            if count == d.PAIRS and len(taken) % 2:
                raise self.fail(
                    f"{label} expects name/value pairs; the last name has no value",
                    taken[-1].location,
                )
            return taken
        taken = []
        while len(taken) < count:
            while _is_comment(cursor.peek()):
                inner.append(cursor.take())
            node = cursor.peek()
            if not _is_value(node):
                plural = "value" if count == 1 else "values"
                raise self.fail(
                    f"{label} expects {count} {plural}, found {_closing(cursor, node)}",
                    self.loc(node) if node is not None else cursor.end,
                )
            taken.append(self.value(cursor.take()))
        return taken

    def route_auth(self, directive, cursor, keywords, inner) -> str:
        kind = self.values(cursor, 1, "auth", inner)[0]
        directive.args = [kind]
        if kind.text == "basic":
            directive.args += self.values(cursor, 2, "auth basic", inner)
        elif kind.text == "hmac":
            self.hmac_auth(directive, cursor, keywords, inner)
        elif kind.text == "forward":
            directive.args += self.values(cursor, 1, "auth forward", inner)
            if _is_block(cursor.peek(skip_comments=True)):
                self.take_block(directive, cursor, d.FORWARD_AUTH, inner, "auth forward block")
        else:
            plugin = self.plugin_tables().auth.get(kind.text)
            if plugin is None or kind.text in ("token",):
                installed = sorted(set(d.BUILTIN_AUTH) | set(self.plugin_tables().auth))
                raise self.fail(
                    f'unknown auth type "{kind.text}"; installed: {", ".join(installed)}',
                    kind.location,
                )
            self.plugin_directive(directive, plugin, cursor, keywords, inner, f"auth {kind.text}")
        return f"auth {kind.text}"

    def hmac_auth(self, directive, cursor, keywords, inner) -> None:
        node = cursor.peek(skip_comments=True)
        if not _is_block(node):
            if isinstance(node, Token) and node.type == "WORD" and node.value == "secret_ref":
                taken = self.values(cursor, 2, "auth hmac secret_ref", inner)
                directive.args += taken
                more = cursor.peek()
                if (
                    _is_value(more)
                    and more.line == taken[-1].location.line
                    and not (more.type == "WORD" and more.value in keywords)
                ):
                    ids = f"{taken[1].text} {self.value(more).text}"
                    raise self.fail(
                        "auth hmac secret_ref takes one secret ID; for several, list them in a"
                        f" block: auth hmac {{ secret_ref {ids} }}",
                        more,
                    )
            else:
                if isinstance(node, Token) and node.type == "WORD" and node.value in keywords:
                    raise self.fail(
                        f'auth hmac expects a secret ref, "secret_ref <ID>" or "{{", found '
                        f"{_describe(node)}",
                        node,
                    )
                directive.args += self.values(cursor, 1, "auth hmac", inner)
        if _is_block(cursor.peek(skip_comments=True)):
            self.take_block(directive, cursor, d.HMAC_AUTH, inner, "auth hmac block")

    def plugin_directive(self, directive, plugin, cursor, keywords, inner, label):
        if plugin.args == d.VARIADIC:
            while _is_value(cursor.peek()) and not (
                cursor.peek().type == "WORD" and cursor.peek().value in keywords
            ):
                directive.args.append(self.value(cursor.take()))
        elif plugin.args:
            directive.args += self.values(cursor, plugin.args, label, inner)
        if _is_block(cursor.peek(skip_comments=True)):
            if not plugin.known:
                self.take_block(directive, cursor, _FREE, inner, f"{label} block")
            elif plugin.block is None:
                raise self.fail(f"{label} takes no block", cursor.peek(skip_comments=True))
            else:
                self.take_block(directive, cursor, plugin.block, inner, f"{label} block")

    def token_auth(self, directive, cursor, inner) -> None:
        kind = self.values(cursor, 1, "auth", inner)[0]
        if kind.text != "token":
            raise self.fail(
                f'unknown auth type "{kind.text}" here; expected "auth token <secret ref>"',
                kind.location,
            )
        directive.args = [kind] + self.values(cursor, 1, "auth token", inner)

    def sign(self, directive, cursor, keywords, inner):
        kind = self.values(cursor, 1, "sign", inner)[0]
        directive.args = [kind]
        if kind.text == "hmac":
            node = cursor.peek(skip_comments=True)
            if isinstance(node, Token) and node.type == "WORD" and node.value == "secret_ref":
                while _is_comment(cursor.peek()):
                    inner.append(cursor.take())
                directive.args.append(self.value(cursor.take()))
                directive.args += self.values(
                    cursor, d.VARIADIC, "sign hmac secret_ref", inner, keywords
                )
            else:
                directive.args += self.values(cursor, 1, "sign hmac", inner)
            return "sign hmac", True
        if kind.text in d.SIGN_ONE_VALUE:
            directive.args += self.values(cursor, 1, f"sign {kind.text}", inner)
            return f"sign {kind.text}", False
        plugin = self.plugin_tables().signers.get(kind.text)
        if plugin is None:
            installed = sorted({"hmac", *self.plugin_tables().signers, *d.SIGN_ONE_VALUE})
            raise self.fail(
                f'unknown sign directive "{kind.text}"; expected one of: {", ".join(installed)}',
                kind.location,
            )
        self.plugin_directive(directive, plugin, cursor, keywords, inner, f"sign {kind.text}")
        return f"sign {kind.text}", True

    def deliver(self, directive, cursor, inner) -> None:
        first = self.values(cursor, 1, "deliver", inner)[0]
        directive.args = [first]
        table = d.DELIVER_BLOCK
        if first.text == "exec" and not first.quoted:
            directive.args += self.values(cursor, 1, "deliver exec", inner)
        elif _could_be_keyword(first):
            plugin = self.plugin_tables().deliverers.get(first.text)
            if plugin is not None:
                count = plugin.args if plugin.known else 1
                if count == d.VARIADIC:
                    while _is_value(cursor.peek()):
                        directive.args.append(self.value(cursor.take()))
                elif count:
                    directive.args += self.values(cursor, count, f"deliver {first.text}", inner)
                table = _FREE if not plugin.known else (plugin.block or {})
        label = f"deliver {first.text}" if not first.quoted else f'deliver "{first.text}"'
        block, comments = self.expect_block(cursor, label)
        inner.extend(comments)
        if table is _FREE:
            directive.block = self.free_block(directive, block, f"{label} block")
        else:
            directive.block = self.block(directive, block, table, "deliver block")

    def match(self, directive, cursor, inner):
        if _is_block(cursor.peek(skip_comments=True)):
            self.take_block(directive, cursor, d.MATCHER, inner, "match block")
            return "match {}", False
        taken = self.take_values(
            cursor,
            lambda node: node.type == "WORD" and node.value.startswith("@"),
            'match expects "{" or named matchers like @name',
        )
        for value in taken:
            if value.text == "@":
                raise self.fail("match expects a matcher name after @", value.location)
        directive.args = taken
        return "match @", True


def _closing(cursor, node) -> str:
    return cursor.closing if node is None else _describe(node)


def _is_route_path(node) -> bool:
    if not isinstance(node, Token):
        return False
    if node.type == "STRING":
        return True
    return node.type == "WORD" and (node.value.startswith("/") or node.value.startswith("{"))


def _could_be_keyword(value: Value) -> bool:
    return not value.quoted and value.text.isidentifier()


def _comment(token: Token) -> str:
    return token.value.rstrip()


def _add_after(directive: Directive, text: str) -> None:
    """A comment on the line where ``directive`` ends: after its closing brace when it has a
    block (on its own line, or after a one-line block), else at the end of its line."""
    if directive.block is None:
        _add_trailing(directive, text)
        return
    text = text.rstrip()
    if directive.closing_trailing_comment:
        text = f"{directive.closing_trailing_comment} {text}"
    directive.closing_trailing_comment = text


def _add_trailing(directive: Directive, text: str) -> None:
    text = text.rstrip()
    if directive.trailing_comment:
        directive.trailing_comment = f"{directive.trailing_comment} {text}"
    else:
        directive.trailing_comment = text
