"""The ``hookaido`` command line: run, config validate/fmt/schema/diff, plugins, version."""

import argparse
import json
import sys

from hookaido import __version__


def _cmd_version(args) -> int:
    print(f"hookaido {__version__}")
    return 0


def _cmd_plugins(args) -> int:
    from hookaido.plugins import registry

    loaded = registry()
    rows = []
    for info in sorted(loaded.plugins.values(), key=lambda p: p.name):
        names = [f"{r.kind}:{r.name}" for r in info.registrations]
        rows.append(
            {"name": info.name, "version": info.version, "source": info.source, "registers": names}
        )
    from hookaido.plugins import missing_message

    for name in getattr(loaded, "missing", ()):
        print(f"warning: {missing_message(name)}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']} {row['version']} ({row['source']}): {', '.join(row['registers'])}")
    return 0


class _CommandParser(argparse.ArgumentParser):
    """A command's parser: an argument it does not know is reported with this command's own
    usage (``hookaido run --bogus`` shows how ``run`` is called), exit code 2."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hookaido", description="Hookaido webhook gateway")
    commands = parser.add_subparsers(dest="command", parser_class=_CommandParser)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(func=_cmd_version)

    plugins = commands.add_parser("plugins", help="list installed plugins")
    plugins.add_argument("--format", choices=("text", "json"), default="text")
    plugins.set_defaults(func=_cmd_plugins)

    from hookaido.commands import add_commands

    add_commands(commands)
    parser.command_names = frozenset(commands.choices)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_word(argv)
    if command is not None and command not in parser.command_names:
        print(f"hookaido: unknown command {command!r}\n", file=sys.stderr)
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return args.func(args)


def _command_word(argv: list[str]) -> str | None:
    """The first argument that is not an option: the command the user asked for."""
    return next((word for word in argv if not word.startswith("-")), None)


if __name__ == "__main__":
    sys.exit(main())
