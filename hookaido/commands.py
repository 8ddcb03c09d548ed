"""Sub-commands that need the config pipeline or the server: ``config ...`` and ``run``."""


def add_commands(commands) -> None:
    """Attach the ``config`` and ``run`` sub-commands to the argparse sub-parser group."""
    from hookaido.config.cli import add_config_commands
    from hookaido.server.cli import add_run_command

    add_config_commands(commands)
    add_run_command(commands)
