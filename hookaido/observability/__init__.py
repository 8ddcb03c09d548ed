"""Runtime log, access log and Prometheus metrics."""


def reopen_log_files() -> None:
    """Reopen every log file (runtime and access) after a log rotation; streams are untouched."""
    from hookaido.observability import accesslog, log

    log.reopen_files()
    accesslog.close_sinks()
