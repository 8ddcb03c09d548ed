"""``hookaido config validate|fmt|schema|diff``: check, print and compare Hookaidofiles.

Validation runs the whole pipeline (parse, placeholders, schema lint, compile, and with
``--strict-secrets`` secret loading) and reports every problem with its place.
"""

import difflib
import json
import os
import re
import sys
from pathlib import Path

from hookaido.errors import ConfigError, HookaidoError

DEFAULT_CONFIG = "Hookaidofile"


def add_config_commands(commands) -> None:
    config = commands.add_parser("config", help="validate, format and inspect a Hookaidofile")
    config.set_defaults(func=lambda args: _help(config))
    sub = config.add_subparsers(dest="config_command")

    validate = sub.add_parser("validate", help="compile the config and report every problem")
    validate.add_argument("--config", default=DEFAULT_CONFIG, help="path of the Hookaidofile")
    validate.add_argument("--format", choices=("json", "text"), default="json")
    validate.add_argument(
        "--strict-secrets", action="store_true", help="also load every secret reference"
    )
    validate.set_defaults(func=cmd_validate)

    fmt = sub.add_parser("fmt", help="print the config in canonical form")
    fmt.add_argument("--config", default=DEFAULT_CONFIG, help="path of the Hookaidofile")
    fmt.add_argument("--write", action="store_true", help="rewrite the file in place")
    fmt.set_defaults(func=cmd_fmt)

    schema = sub.add_parser("schema", help="print the JSON Schema, plugin fragments merged")
    schema.set_defaults(func=cmd_schema)

    diff = sub.add_parser("diff", help="unified diff of two configs in canonical form")
    diff.add_argument("--context", type=int, default=3, help="lines of context (default 3)")
    diff.add_argument("old")
    diff.add_argument("new")
    diff.set_defaults(func=cmd_diff)


def _help(parser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _registry():
    from hookaido.plugins import registry

    return registry()


def validate_file(path: str, strict_secrets: bool = False, environ=None):
    """Run the whole pipeline; return ``(errors, warnings)`` as located messages."""
    from hookaido.config.parser import parse_file
    from hookaido.config.placeholders import PlaceholderError, resolve_document
    from hookaido.config.schema import lint

    environ = os.environ if environ is None else environ
    errors: list[str] = []
    warnings: list[str] = []
    try:
        registry = _registry()
        document = parse_file(path, registry=registry)
        unresolved = None
        try:
            document, warnings = resolve_document(document, environ)
        except PlaceholderError as exc:
            document, warnings, unresolved = exc.document, exc.warnings, exc
            errors.extend(exc.problems)
        schema_errors = lint(document, registry)
        compile_errors: list[str] = []
        config, compile_warnings = _compile(document, registry, compile_errors)
        later = _not_repeated(schema_errors, compile_errors) + compile_errors
        errors.extend(p for p in later if unresolved is None or not unresolved.repeats(p))
        warnings = list(warnings) + compile_warnings
        if config is not None and not errors:
            from hookaido.config.startup import backend_problems, environment_problems

            errors.extend(backend_problems(config, registry))
            found = environment_problems(config, document)
            if strict_secrets:
                errors.extend(found)
            else:
                warnings.extend(f"{problem} (hookaido run would not start)" for problem in found)
        if config is not None and strict_secrets and not errors:
            _load_secrets(config, environ, errors, registry)
    except ConfigError as exc:
        errors.extend(exc.problems)
    except HookaidoError as exc:
        errors.append(str(exc))
    return list(dict.fromkeys(errors)), list(dict.fromkeys(warnings))


def _compile(document, registry, errors: list[str]):
    """The compiled config (``None`` when it has errors, added to ``errors``) and the
    warnings, which are reported either way."""
    from hookaido.config.compile import CompileError, compile_document

    try:
        config = compile_document(document, registry)
    except CompileError as exc:
        errors.extend(exc.problems)
        return None, exc.warnings
    except ConfigError as exc:
        errors.extend(exc.problems)
        return None, []
    return config, list(config.warnings)


_PLACE = re.compile(r"^(.*?:\d+):\d+: ")
_QUOTED = re.compile(r'"([^"]+)"')


def _not_repeated(schema_errors: list[str], compile_errors: list[str]) -> list[str]:
    """Schema errors that say something the compiler did not already say: one that names
    the same quoted value on the same line is the same mistake told twice."""
    said = set()
    for message in compile_errors:
        place = _PLACE.match(message)
        if place:
            said.update((place.group(1), value) for value in _QUOTED.findall(message))
    kept = []
    for message in schema_errors:
        place = _PLACE.match(message)
        values = _QUOTED.findall(message) if place else []
        if place and any((place.group(1), value) in said for value in values):
            continue
        kept.append(message)
    return kept


def _load_secrets(config, environ, errors: list[str], registry) -> None:
    """Load every secret, then build what start-up builds from them (auth checks)."""
    from hookaido.nonces import NonceStore
    from hookaido.secrets import load_all
    from hookaido.server.run import _RuntimeShell, build_generation

    try:
        secrets = load_all(config, environ)
    except ConfigError as exc:
        errors.extend(exc.problems)
        return
    try:
        build_generation(config, secrets, _RuntimeShell(registry, NonceStore()), "", 1)
    except ConfigError as exc:
        errors.extend(exc.problems)


def cmd_validate(args) -> int:
    errors, warnings = validate_file(args.config, args.strict_secrets)
    ok = not errors
    stream = sys.stdout if ok else sys.stderr
    if args.format == "json":
        report: dict = {"ok": ok}
        if errors:
            report["errors"] = errors
        if warnings:
            report["warnings"] = warnings
        print(json.dumps(report, indent=2), file=stream)
    elif ok:
        print(f"config ok (warnings: {len(warnings)})" if warnings else "config ok", file=stream)
    else:
        print("config invalid:", file=stream)
        for error in errors:
            print(error, file=stream)
    return 0 if ok else 1


def canonical_text(path: str) -> str:
    """The canonical form of the config file at ``path`` (``ConfigError`` when unusable)."""
    from hookaido.config.fmt import format_document
    from hookaido.config.parser import parse_file

    registry = None
    try:
        registry = _registry()
    except HookaidoError:
        pass  # plugin directives then fail to parse, with a located error
    return format_document(parse_file(path, registry=registry))


def cmd_fmt(args) -> int:
    try:
        text = canonical_text(args.config)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    if not args.write:
        sys.stdout.write(text)
        return 0
    try:
        if Path(args.config).read_bytes() != text.encode("utf-8"):
            Path(args.config).write_text(text, encoding="utf-8", newline="\n")
    except OSError as exc:
        print(f"cannot write {args.config}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def cmd_schema(args) -> int:
    from hookaido.config.schema import merged_schema

    try:
        registry = _registry()
    except HookaidoError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(json.dumps(merged_schema(registry), indent=2))
    return 0


def cmd_diff(args) -> int:
    if args.context < 0:
        print("--context must be 0 or more", file=sys.stderr)
        return 2
    try:
        old = canonical_text(args.old)
        new = canonical_text(args.new)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    if old == new:
        return 0
    diff = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=args.old,
        tofile=args.new,
        n=args.context,
    )
    sys.stdout.writelines(diff)
    return 1
