"""``hookaido run``."""


def add_run_command(commands) -> None:
    commands.add_parser("run", help="start the server")
