"""``hookaido config validate|fmt|schema|diff``."""


def add_config_commands(commands) -> None:
    config = commands.add_parser("config", help="validate, format and inspect a Hookaidofile")
    config.add_subparsers(dest="config_command")
