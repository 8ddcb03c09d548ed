"""What every compile step shares: the located error/warning list and typed directive readers.

Readers never raise for user mistakes: they record a located problem and return ``None``.
"""

import json
from collections.abc import Callable
from typing import Any

from hookaido.config import values
from hookaido.config.ast import Directive, Value
from hookaido.config.model import SecretRef
from hookaido.errors import Location


def quote(text: str) -> str:
    """Show a user's value in messages the way the spec does: in double quotes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _location_of(at) -> Location | None:
    if at is None or isinstance(at, Location):
        return at
    return getattr(at, "location", None)


def _unfilled(at, message: str) -> str:
    """A message about a value (or a directive) shows filled-in placeholders as written."""
    if isinstance(at, Value):
        return hide_filled_in(at, message)
    for value in getattr(at, "args", None) or ():
        message = hide_filled_in(value, message)
    return message


class Problems:
    """Every error and warning of one compilation, each prefixed with its place.

    ``errors``/``warnings`` list located messages in file order, then unlocated ones.
    """

    def __init__(self):
        self._errors: list[tuple[tuple, str]] = []
        self._warnings: list[tuple[tuple, str]] = []
        # contexts whose written value was refused: checks that depend on them are skipped
        self.rejected: set[str] = set()

    @staticmethod
    def _entry(at, message: str) -> tuple[tuple, str]:
        location = _location_of(at)
        if location is None:
            return (1, "", 0, 0), message
        return (0, location.file, location.line, location.column), f"{location}: {message}"

    @staticmethod
    def _add(entries: list, entry) -> None:
        if all(entry[1] != existing[1] for existing in entries):
            entries.append(entry)

    def error(self, at, message: str) -> None:
        self._add(self._errors, self._entry(at, _unfilled(at, message)))

    def warning(self, at, message: str) -> None:
        self._add(self._warnings, self._entry(at, _unfilled(at, message)))

    @property
    def errors(self) -> list[str]:
        return [text for _, text in sorted(self._errors, key=lambda entry: entry[0])]

    @property
    def warnings(self) -> list[str]:
        return [text for _, text in sorted(self._warnings, key=lambda entry: entry[0])]


class Block:
    """The directives of one block, looked up by keyword.

    ``context`` names the block in messages (``pull_api``, ``route "/p"``). Unknown keywords
    are reported once, when the block is read.
    """

    def __init__(
        self,
        directives: list[Directive] | None,
        problems: Problems,
        context: str,
        known: set[str] | None = None,
        repeatable: set[str] = frozenset(),
    ):
        self.directives = list(directives or [])
        self.problems = problems
        self.context = context
        self.repeatable = repeatable
        if known is not None:
            for directive in self.directives:
                if directive.name not in known:
                    problems.error(
                        directive,
                        f"{context}: unknown directive {quote(directive.name)}"
                        f" (expected one of: {', '.join(sorted(known))})",
                    )

    def all(self, name: str) -> list[Directive]:
        return [directive for directive in self.directives if directive.name == name]

    def one(self, name: str) -> Directive | None:
        """The single directive ``name``, reporting repeats."""
        found = self.all(name)
        for repeat in found[1:]:
            self.problems.error(repeat, f"{self.context}: duplicate {name}")
        return found[0] if found else None

    def has(self, name: str) -> bool:
        return any(directive.name == name for directive in self.directives)

    # ----------------------------------------------------------------------------------
    # typed single-value readers
    # ----------------------------------------------------------------------------------

    def value(self, name: str) -> Value | None:
        """The one value of directive ``name`` (``None`` when absent or malformed)."""
        directive = self.one(name)
        if directive is None:
            return None
        return single_value(self.problems, directive, self.context)

    def parsed(self, name: str, parser: Callable[[str], Any], default: Any = None) -> Any:
        """Directive ``name`` parsed with ``parser``; ``default`` when absent or invalid."""
        value = self.value(name)
        if value is None:
            return default
        return parse_value(self.problems, value, parser, f"{self.context}.{name}", default)


def single_value(problems: Problems, directive: Directive, context: str) -> Value | None:
    """The only value of ``directive``; reports a block or a wrong number of values."""
    if directive.block is not None:
        problems.error(directive, f"{context}.{directive.name}: does not take a block")
        return None
    if len(directive.args) != 1:
        problems.error(
            directive,
            f"{context}.{directive.name}: expects exactly one value, got {len(directive.args)}",
        )
        return None
    return directive.args[0]


def parse_value(
    problems: Problems,
    value: Value,
    parser: Callable[[str], Any],
    context: str,
    default: Any = None,
) -> Any:
    """``parser(value.text)``, or ``default`` after a located error naming ``context``.

    A value filled in from placeholders is never echoed: the message quotes it as written.
    """
    try:
        return parser(value.text)
    except ValueError as exc:
        problems.rejected.add(context)
        problems.error(value, f"{context}: {hide_filled_in(value, str(exc))}")
        return default


def hide_filled_in(value: Value, message: str) -> str:
    """``message`` with the filled-in text of ``value`` replaced by the text as written."""
    if value.written is None or not value.text:
        return message
    return hide_text(message, value.text, value.written)


def hide_text(message: str, text: str, written: str) -> str:
    """Replace ``text`` in ``message`` by ``written``: quoted forms always, bare text when
    it is long enough not to be a fragment of ordinary words."""
    for form in (json.dumps(text), quote(text), repr(text)):
        message = message.replace(form, quote(written))
    # Text that the written form contains shows nothing the file does not; replacing it
    # would only nest the written form in itself.
    if len(text) < 4 or text in written:
        return message
    return message.replace(text, written)


SCHEMES = ("env:", "file:", "vault:", "raw:")


def parse_secret_ref(problems: Problems, value: Value, context: str) -> SecretRef | None:
    """``value`` as a secret reference, or ``None`` after a located error naming ``context``.

    A placeholder (``{env.X}``, ``{file.P}``) fills in the secret itself, not a reference to
    it: the error then names the place and what was expected, never the filled-in value.
    """
    if value.written is not None:
        try:
            return values.parse_secret_ref(value.text, value.location)
        except ValueError as exc:
            problems.rejected.add(context)
            if value.written.lower().startswith(SCHEMES):
                reason = str(exc).rsplit('": ', 1)[-1]
                problems.error(
                    value,
                    f"{context}: {quote(value.written)} filled in an invalid secret reference"
                    f" ({reason}); is the placeholder's variable set and not empty?",
                )
            else:
                problems.error(
                    value,
                    f"{context}: expected a secret reference ({values.SECRET_FORMS});"
                    f" a placeholder was written here ({quote(value.written)}), which fills in"
                    " the secret itself; write env:NAME or file:/path instead",
                )
            return None
    return parse_value(
        problems, value, lambda text: values.parse_secret_ref(text, value.location), context
    )


def options(args: list[Value]) -> dict[str, Value]:
    """Read ``key value`` pairs (``retry exponential max 5 base 1s``) into a dict."""
    return {args[i].text.lower(): args[i + 1] for i in range(0, len(args) - 1, 2)}
