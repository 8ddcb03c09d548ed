"""Placeholder resolution: ``{vars.NAME}`` first, then ``{$VAR}``, ``{$VAR:default}``,
``{env.VAR}`` and ``{file.PATH}`` within each value. Results are never re-tokenised."""

import copy
import re

from hookaido.config.ast import Directive, Document, Value
from hookaido.errors import ConfigError, Location

_START = re.compile(r"\{(\$|env\.|file\.|vars\.)")
# ``{evn.TOKEN}``, ``{ENV.PW}``, ``{var.BASE}``: braces around a word with a dot that is not one
# of the known forms, most likely a mistyped placeholder that would otherwise stay literal.
_LOOKALIKE = re.compile(r"\{(?!\$|env\.|file\.|vars\.)[A-Za-z_][A-Za-z0-9_]*\.[^{}\s]*\}")
KNOWN_FORMS = "{env.NAME}, {$NAME}, {$NAME:default}, {file.PATH} and {vars.NAME}"


class PlaceholderError(ConfigError):
    """Placeholders that cannot be filled in.

    ``document`` is the copy with every other placeholder resolved, so that later stages can
    still report their own problems; ``failed`` are the values that could not be resolved.
    """

    def __init__(self, errors: list[str], document: Document, warnings: list[str], failed):
        super().__init__(errors[0], problems=errors)
        self.document = document
        self.warnings = warnings
        self.failed: list[Value] = failed

    def repeats(self, problem: str) -> bool:
        """Whether ``problem`` of a later stage only follows from an unresolved value: it is
        located at that value or quotes it as written."""
        return any(
            problem.startswith(f"{value.location}: ") or f'"{value.text}"' in problem
            for value in self.failed
        )


class _Problems:
    def __init__(self):
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.failed: list[Value] = []

    def error(self, location: Location, message: str) -> None:
        self.errors.append(f"{location}: {message}")

    def warn(self, location: Location, message: str) -> None:
        self.warnings.append(f"{location}: {message}")


def _scan(text: str):
    """Yield ``(start, end, kind, name)`` for each placeholder, or raise ``ValueError``."""
    position = 0
    while (found := _START.search(text, position)) is not None:
        close = text.find("}", found.end())
        if close == -1:
            raise ValueError(f'unterminated placeholder "{text[found.start() :]}"; expected "}}"')
        kind = found.group(1)
        name = text[found.end() : close]
        if kind == "$":
            name = name.split(":", 1)[0]
        if not name:
            raise ValueError(f'empty name in placeholder "{text[found.start() : close + 1]}"')
        yield found.start(), close + 1, kind, text[found.end() : close]
        position = close + 1


def find_placeholders(text: str) -> list[tuple[str, str]]:
    """``(kind, body)`` of each placeholder in ``text``; ``ValueError`` when malformed."""
    return [(kind, body) for _, _, kind, body in _scan(text)]


class _Vars:
    """The ``vars`` block, each value resolved against the others with cycle detection."""

    def __init__(self, doc: Document, problems: _Problems):
        self.problems = problems
        self.raw: dict[str, Value] = {}
        for item in doc.items:
            if item.name == "vars" and item.block:
                for entry in item.block:
                    if entry.args:
                        self.raw[entry.name] = entry.args[0]
        self.resolved: dict[str, str | None] = {}
        for name in self.raw:
            self.resolve(name, [])

    def resolve(self, name: str, chain: list[str]) -> str | None:
        if name in self.resolved:
            return self.resolved[name]
        if name in chain:
            cycle = " -> ".join(chain[chain.index(name) :] + [name])
            self.problems.error(self.raw[name].location, f"vars cycle detected: {cycle}")
            for member in chain:
                self.resolved[member] = None
            return None
        value = self.raw[name]
        chain = chain + [name]
        try:
            result = self.substitute(value.text, value.location, chain)
        except ValueError as exc:
            self.problems.error(value.location, str(exc))
            result = None
        self.resolved.setdefault(name, result)
        return self.resolved[name]

    def substitute(self, text: str, location: Location, chain: list[str]) -> str | None:
        out = []
        position = 0
        failed = False
        for start, end, kind, body in _scan(text):
            if kind != "vars.":
                continue
            out.append(text[position:start])
            position = end
            if body not in self.raw:
                self.problems.error(location, f'unknown variable "{body}" in "{{vars.{body}}}"')
                failed = True
                continue
            value = self.resolve(body, chain)
            if value is None:
                failed = True
                continue
            out.append(value)
        out.append(text[position:])
        return None if failed else "".join(out)


def _env_and_files(text: str, location: Location, environ, problems: _Problems) -> str:
    out = []
    position = 0
    for start, end, kind, body in _scan(text):
        if kind == "vars.":
            continue
        out.append(text[position:start])
        position = end
        if kind == "$":
            name, has_default, default = body.partition(":")
            if name in environ:
                out.append(environ[name])
            elif has_default:
                out.append(default)
            else:
                problems.warn(location, f'environment variable {name} is not set; using ""')
        elif kind == "env.":
            if body in environ:
                out.append(environ[body])
            else:
                problems.warn(location, f'environment variable {body} is not set; using ""')
        else:
            out.append(_read_file(body, location, problems))
    out.append(text[position:])
    return "".join(out)


def _read_file(path: str, location: Location, problems: _Problems) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        problems.error(location, f'cannot read file "{path}" for {{file.{path}}}: {reason}')
        return ""


def resolve_document(doc: Document, environ) -> tuple[Document, list[str]]:
    """A copy of ``doc`` with every placeholder replaced, and the located warnings.

    Raises ``PlaceholderError`` listing every problem (unknown or cyclic vars, unreadable
    files, malformed placeholders). The ``vars`` block itself is left as written.
    """
    problems = _Problems()
    variables = _Vars(doc, problems)
    resolved = copy.deepcopy(doc)
    for item in resolved.items:
        if item.name == "vars":
            continue
        _resolve_directive(item, variables, environ, problems)
    if problems.errors:
        raise PlaceholderError(problems.errors, resolved, problems.warnings, problems.failed)
    return resolved, problems.warnings


def _resolve_directive(directive: Directive, variables: _Vars, environ, problems) -> None:
    for value in directive.args:
        _resolve_value(value, variables, environ, problems)
    for child in directive.block or ():
        _resolve_directive(child, variables, environ, problems)


def _resolve_value(value: Value, variables: _Vars, environ, problems: _Problems) -> None:
    for lookalike in _LOOKALIKE.findall(value.text):
        problems.warn(
            value.location,
            f'"{lookalike}" is not a placeholder and is kept as written'
            f" (placeholders are {KNOWN_FORMS})",
        )
    written = copy.copy(value)
    errors_before = len(problems.errors)
    filled = _fill_in(value, variables, environ, problems)
    if not filled or len(problems.errors) > errors_before:
        problems.failed.append(written)


def _fill_in(value: Value, variables: _Vars, environ, problems: _Problems) -> bool:
    """Replace the placeholders of ``value``; ``False`` when it keeps its written text."""
    try:
        with_vars = variables.substitute(value.text, value.location, [])
    except ValueError as exc:
        problems.error(value.location, str(exc))
        return False
    if with_vars is None:
        return False
    written = value.text
    try:
        value.text = _env_and_files(with_vars, value.location, environ, problems)
    except ValueError as exc:
        problems.error(value.location, str(exc))
        return False
    if value.text != written:
        value.written = written
    return True
