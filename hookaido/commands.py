"""Sub-commands that need the config pipeline or the server: ``config ...`` and ``run``."""


def add_commands(commands) -> None:
    """Attach the ``config`` and ``run`` sub-commands to the argparse sub-parser group."""
