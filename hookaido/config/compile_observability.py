"""Compile ``observability { ... }``: access and runtime logs, metrics listener, tracing.

Tracing is validated only; nothing is ever exported.
"""

from hookaido.config import values
from hookaido.config.ast import Directive
from hookaido.config.compile_globals import read_listen
from hookaido.config.compile_reader import Block, Problems, parse_value, quote, single_value
from hookaido.config.model import LogConfig, MetricsConfig, ObservabilityConfig

LOG_LEVELS = {"debug": "debug", "info": "info", "warn": "warn", "warning": "warn"}
LOG_LEVELS.update({"error": "error", "off": "off"})


def compile_observability(directive: Directive | None, problems: Problems) -> ObservabilityConfig:
    if directive is None:
        return ObservabilityConfig()
    block = Block(
        directive.block,
        problems,
        "observability",
        known={"access_log", "runtime_log", "metrics", "tracing"},
    )
    access = block.one("access_log")
    runtime = block.one("runtime_log")
    metrics = block.one("metrics")
    tracing = block.one("tracing")
    return ObservabilityConfig(
        access_log=_compile_log(access, problems, "access_log") if access else LogConfig(),
        runtime_log=_compile_log(runtime, problems, "runtime_log") if runtime else LogConfig(),
        metrics=_compile_metrics(metrics, problems) if metrics else MetricsConfig(),
        tracing_enabled=_compile_tracing(tracing, problems) if tracing else False,
        runtime_log_configured=runtime is not None
        and (runtime.block is None or any(item.name == "level" for item in runtime.block)),
    )


def _compile_log(directive: Directive, problems: Problems, kind: str) -> LogConfig:
    where = f"observability.{kind}"
    if directive.block is None:
        value = single_value(problems, directive, "observability")
        if value is None:
            return LogConfig()
        if kind == "access_log":
            return LogConfig(enabled=parse_value(problems, value, values.parse_bool, where, True))
        level = _parse_level(problems, value, where)
        return LogConfig(enabled=level != "off", level=level)

    first = "enabled" if kind == "access_log" else "level"
    block = Block(directive.block, problems, where, known={first, "output", "path", "format"})
    enabled, level = True, "info"
    if kind == "access_log":
        enabled = block.parsed("enabled", values.parse_bool, True)
    else:
        level_value = block.value("level")
        if level_value is not None:
            level = _parse_level(problems, level_value, f"{where}.level")
            enabled = level != "off"

    output = "stderr"
    output_value = block.value("output")
    if output_value is not None:
        output = output_value.text.lower()
        if output not in ("stdout", "stderr", "file"):
            problems.error(
                output_value,
                f"{where}.output: unknown output {quote(output_value.text)}"
                " (expected stdout, stderr or file)",
            )
            output = "stderr"
    path_value = block.value("path")
    path = path_value.text if path_value is not None else None
    if output == "file" and not (path and path.strip()):
        problems.error(path_value or directive, f"{where}: path is required with output file")
    if output != "file" and path_value is not None:
        problems.error(path_value, f"{where}: path is only allowed with output file")
        path = None
    format_value = block.value("format")
    if format_value is not None and format_value.text.lower() != "json":
        problems.error(
            format_value, f"{where}.format: must be json, got {quote(format_value.text)}"
        )
    return LogConfig(enabled=enabled, level=level, output=output, path=path)


def _parse_level(problems: Problems, value, where: str) -> str:
    level = LOG_LEVELS.get(value.text.lower())
    if level is None:
        problems.error(
            value,
            f"{where}: unknown level {quote(value.text)} (expected debug, info, warn, error, off)",
        )
        return "info"
    return level


def _compile_metrics(directive: Directive, problems: Problems) -> MetricsConfig:
    where = "observability.metrics"
    default = MetricsConfig()
    if directive.block is None:
        value = single_value(problems, directive, "observability")
        enabled = parse_value(problems, value, values.parse_bool, where, True) if value else True
        if enabled:
            problems.warning(directive, f'{where}.listen not set; using default "{default.listen}"')
            problems.warning(directive, f'{where}.prefix not set; using default "{default.prefix}"')
        return MetricsConfig(enabled=enabled)

    block = Block(directive.block, problems, where, known={"enabled", "listen", "prefix"})
    enabled = block.parsed("enabled", values.parse_bool, True)
    listen, listen_written = read_listen(block, default.listen)
    prefix = default.prefix
    prefix_value = block.value("prefix")
    if prefix_value is not None:
        prefix = parse_value(problems, prefix_value, values.clean_path, f"{where}.prefix", prefix)
    if enabled:
        if not listen_written:
            problems.warning(directive, f'{where}.listen not set; using default "{listen}"')
        if prefix_value is None:
            problems.warning(directive, f'{where}.prefix not set; using default "{prefix}"')
    else:
        for written in (block.one("listen"), prefix_value):
            if written is not None:
                problems.warning(written, f"{where}: listen/prefix ignored while disabled")
    return MetricsConfig(enabled=enabled, listen=listen, prefix=prefix)


TRACING_DIRECTIVES = {
    "enabled",
    "collector",
    "url_path",
    "timeout",
    "compression",
    "insecure",
    "proxy_url",
    "tls",
    "retry",
    "header",
}


def _compile_tracing(directive: Directive, problems: Problems) -> bool:
    where = "observability.tracing"
    if directive.block is None:
        value = single_value(problems, directive, "observability")
        enabled = parse_value(problems, value, values.parse_bool, where, False) if value else False
    else:
        block = Block(directive.block, problems, where, known=TRACING_DIRECTIVES)
        enabled = block.parsed("enabled", values.parse_bool, True)
        block.parsed("timeout", values.parse_positive_duration)
        block.parsed("insecure", values.parse_bool)
        compression = block.value("compression")
        if compression is not None and compression.text.lower() not in ("none", "gzip"):
            problems.error(compression, f"{where}.compression: expected none or gzip")
        for name in ("collector", "url_path", "proxy_url"):
            value = block.value(name)
            if value is not None and not value.text.strip():
                problems.error(value, f"{where}.{name}: must not be empty")
        for header in block.all("header"):
            if len(header.args) != 2 or not values.is_http_token(header.args[0].text):
                problems.error(header, f"{where}.header: expects <token-name> <value>")
    if enabled:
        problems.warning(directive, f"{where}: tracing is not supported; nothing is exported")
    return enabled
