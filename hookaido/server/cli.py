"""``hookaido run``: the flags, handed to ``hookaido.server.run``."""

LOG_LEVELS = ("debug", "info", "warn", "error")


def _cmd_run(args) -> int:
    from hookaido.server.run import RunOptions, run

    options = RunOptions(
        config=args.config,
        db=args.db,
        dotenv=args.dotenv,
        pid_file=args.pid_file,
        watch=args.watch,
        log_level=args.log_level,
    )
    return run(options)


def _log_level(value: str) -> str:
    level = value.lower()
    if level == "warning":
        level = "warn"
    if level not in LOG_LEVELS:
        raise ValueError(value)
    return level


_log_level.__name__ = "log level"  # argparse names the type in its error message


def add_run_command(commands) -> None:
    run = commands.add_parser("run", help="start the server")
    run.add_argument("--config", default="./Hookaidofile", help="config file (./Hookaidofile)")
    run.add_argument(
        "--db", default="./hookaido.db", help="SQLite file (./hookaido.db; ignored for memory)"
    )
    run.add_argument("--dotenv", default=None, help="KEY=VALUE file applied to the environment")
    run.add_argument("--pid-file", default=None, help="write the process id here while running")
    run.add_argument("--watch", action="store_true", help="reload when the config file changes")
    run.add_argument(
        "--log-level",
        type=_log_level,
        default="info",
        metavar="{debug,info,warn,error}",
        help="runtime log level (info)",
    )
    run.set_defaults(func=_cmd_run)
