"""``hookaido run``: start-up, the listeners, signals, hot reload and a clean shutdown.

The main thread only waits for signals and config changes; requests are served by the
listeners' threads and push delivery by the dispatcher.
"""

import hashlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hookaido.config.model import Config
from hookaido.errors import ConfigError, HookaidoError
from hookaido.observability import log
from hookaido.observability.log import event
from hookaido.observability.metrics import Metrics
from hookaido.plugins import registry as plugin_registry
from hookaido.queue import BackendSettings, Retention
from hookaido.runtime import Generation, Runtime
from hookaido.server import ingress, pull_api
from hookaido.server.listeners import STOP_GRACE, Mount, PrefixRouter, make_server

WATCH_INTERVAL = 0.2
# Request threads per listener, by the busiest component it serves. An ingress request waits
# for the group commit that makes its webhook durable, and every waiting thread's webhook
# joins the next commit: more threads, larger groups, fewer syncs per webhook. Each Pull API
# long-poll or stream holds a thread while it waits; a share is kept for the other calls.
THREADS = {
    "ingress": 64,
    "pull_api": pull_api.WAITING_LIMIT + pull_api.SETTLE_THREADS,
    "admin_api": 16,
}
BODY_CAP_FLOOR = 8 * 1024 * 1024


class StartupError(HookaidoError):
    """Start-up cannot continue; ``lines`` are printed to stderr, ``event`` is logged."""

    def __init__(self, event_name: str, lines: list[str]):
        self.event_name = event_name
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class RunOptions:
    config: str = "Hookaidofile"
    db: str = "./hookaido.db"
    dotenv: str | None = None
    pid_file: str | None = None
    watch: bool = False
    log_level: str = "info"


# -- start-up pieces ------------------------------------------------------------------------


def load_dotenv(path: str, environ=os.environ) -> None:
    """Apply ``KEY=VALUE`` lines; a variable that is already set and non-empty wins."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StartupError("read_dotenv_failed", [f"dotenv {path}: cannot read: {exc}"]) from exc
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, equals, value = line.partition("=")
        key = key.strip()
        if not equals or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise StartupError(
                "read_dotenv_failed", [f"{path}:{number}:1: expected KEY=VALUE, got {raw!r}"]
            )
        value = _dotenv_value(value.strip())
        if not environ.get(key):
            environ[key] = value


def _dotenv_value(value: str) -> str:
    """The value of one line: quoted (a comment may follow the closing quote) or bare."""
    if value[:1] in ("'", '"'):
        quoted = _dotenv_quoted(value)
        if quoted is not None:
            return quoted
    comment = value.find(" #")
    return value[:comment].rstrip() if comment != -1 else value


DOTENV_ESCAPES = {"n": "\n", '"': '"', "\\": "\\"}


def _dotenv_quoted(value: str) -> str | None:
    """The text between the opening quote and its closing one, or ``None`` when the quote is
    never closed or something other than a comment follows it."""
    quote = value[0]
    out = []
    index = 1
    while index < len(value):
        char = value[index]
        if char == quote:
            rest = value[index + 1 :].strip()
            return "".join(out) if not rest or rest.startswith("#") else None
        if quote == '"' and char == "\\" and index + 1 < len(value):
            escaped = DOTENV_ESCAPES.get(value[index + 1])
            if escaped is not None:
                out.append(escaped)
                index += 2
                continue
        out.append(char)
        index += 1
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_pid_file(path: str) -> None:
    pid_path = Path(path)
    try:
        existing = int(pid_path.read_text().strip())
    except (OSError, ValueError):
        existing = None
    if existing and existing != os.getpid() and _process_alive(existing):
        raise StartupError("pid_file_in_use", [f"pid file {path} names running process {existing}"])
    try:
        pid_path.parent.mkdir(parents=True, exist_ok=True)
        pid_path.write_text(f"{os.getpid()}\n")
    except OSError as exc:
        raise StartupError("pid_file_failed", [f"pid file {path}: {exc}"]) from exc


def remove_pid_file(path: str | None) -> None:
    if not path:
        return
    try:
        if Path(path).read_text().strip() == str(os.getpid()):
            Path(path).unlink()
    except OSError:
        pass


def compile_config(path: str) -> tuple[Config, str]:
    """Compile the file; returns the config and the SHA-256 of its bytes."""
    from hookaido.config.loader import load_config

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise StartupError(
            "read_config_failed", ["config invalid:", f"{path}: cannot read: {exc.strerror}"]
        ) from exc
    try:
        config = load_config(path)
    except ConfigError as exc:
        failure = "parse_config_failed" if _unparsable(path) else "compile_config_failed"
        raise StartupError(failure, ["config invalid:", *exc.problems]) from exc
    return config, hashlib.sha256(data).hexdigest()


def _unparsable(path: str) -> bool:
    """Whether the file fails already as syntax, before any directive is compiled."""
    from hookaido.config.parser import parse_file

    try:
        parse_file(path, registry=plugin_registry())
    except ConfigError:
        return True
    return False


def load_secrets(config: Config) -> dict:
    from hookaido.secrets import load_all

    try:
        return load_all(config)
    except ConfigError as exc:
        raise StartupError("load_auth_failed", [*exc.problems]) from exc


def open_backend(config: Config, db_path: str, registry, observer=None):
    """Build and open the configured backend; ``observer`` receives its store reports."""
    registration = registry.get("backend", config.backend)
    if registration is None:
        installed = ", ".join(registry.names("backend")) or "none"
        raise StartupError(
            "open_queue_failed",
            [f"queue backend {config.backend!r} is not installed (installed: {installed})"],
        )
    if config.backend != "memory":
        folder = Path(db_path).expanduser().resolve().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(
                "open_queue_failed", [f"--db {db_path}: cannot create {folder}: {exc.strerror}"]
            ) from exc
    settings = BackendSettings(
        db_path=db_path,
        max_depth=config.queue_limits.max_depth,
        drop_policy=config.queue_limits.drop_policy,
        retention=config.retention if config.retention is not None else Retention(),
        observer=observer,
    )
    try:
        backend = registration.factory(settings)
        backend.open()
    except Exception as exc:
        raise StartupError("open_queue_failed", [f"queue {config.backend}: {exc}"]) from exc
    event("queue_backend_selected", backend=config.backend)
    return backend


def build_generation(
    config: Config, secrets: dict, runtime_like, fingerprint: str, number: int, previous=None
) -> Generation:
    """Compile-time config plus everything built from it; raises ``ConfigError``."""
    generation = Generation(
        config=config,
        secrets=secrets,
        parts={},
        number=number,
        fingerprint=fingerprint,
        loaded_at=datetime.now(UTC),
    )
    previous_ingress = previous.parts.get(ingress.PART) if previous is not None else None
    generation.parts[ingress.PART] = ingress.build_parts(
        config,
        runtime_like.registry,
        _secret_resolver(secrets),
        runtime_like.nonces,
        previous_ingress,
    )
    return generation


def _secret_resolver(secrets: dict):
    def resolve(ref):
        value = secrets.get(ref)
        if value is None:
            from hookaido.secrets import resolve as resolve_now

            value = resolve_now(ref)
        return value

    return resolve


# -- listeners ------------------------------------------------------------------------------


@dataclass
class Component:
    name: str  # ingress | pull_api | admin_api
    listen: str
    prefix: str
    tls: object
    app: object


def _components(runtime: Runtime, trends=None) -> list[Component]:
    config = runtime.config
    components = [
        Component(
            "ingress",
            config.ingress.listen,
            "",
            config.ingress.tls,
            ingress.make_ingress_app(runtime, trends),
        )
    ]
    if config.pull_routes:
        from hookaido.server.pull_api import make_pull_app

        components.append(
            Component(
                "pull_api",
                config.pull_api.listen,
                config.pull_api.prefix,
                config.pull_api.tls,
                make_pull_app(runtime),
            )
        )
    from hookaido.server.admin_api import make_admin_app

    components.append(
        Component(
            "admin_api",
            config.admin_api.listen,
            config.admin_api.prefix,
            config.admin_api.tls,
            make_admin_app(runtime, trends),
        )
    )
    return components


def _group_app(group: list[Component]):
    """One WSGI app for the components sharing a socket."""
    ingress_parts = [c for c in group if c.name == "ingress"]
    apis = [c for c in group if c.name != "ingress"]
    if ingress_parts and not apis:
        return ingress_parts[0].app
    mounts = [Mount(c.prefix, c.app, c.name) for c in apis]
    fallback = ingress_parts[0].app if ingress_parts else None
    return PrefixRouter(mounts, fallback)


def start_listeners(runtime: Runtime, trends=None) -> list[tuple[object, list[Component]]]:
    """Start one listener per distinct ``listen`` string, plus the metrics listener.

    ``trends`` is the started ``TrendRecorder`` the Admin API reads backlog trends from.
    """
    from hookaido.observability.accesslog import wrap_access_log
    from hookaido.observability.metrics_server import start_metrics_server

    observability = runtime.config.observability
    groups: dict[str, list[Component]] = {}
    for component in _components(runtime, trends):
        groups.setdefault(component.listen, []).append(component)
    check_listener_tls(groups.values())
    started = []
    try:
        for listen, group in groups.items():
            tls = next((c.tls for c in group if c.tls is not None), None)
            threads = max(THREADS[c.name] for c in group)
            name = "+".join(c.name for c in group)
            app = wrap_access_log(_group_app(group), group[0].name, observability.access_log)
            server = make_server(
                app, listen, tls, threads=threads, name=name, max_body=body_cap(runtime.config)
            )
            server.start()
            started.append((server, group))
        metrics = start_metrics_server(runtime, observability.metrics)
        if metrics is not None:
            started.append((metrics, [_metrics_component(observability.metrics)]))
    except (OSError, HookaidoError) as exc:
        stop_listeners(started, timeout=1.0)
        raise StartupError("start_servers_failed", [f"cannot start listeners: {exc}"]) from exc
    return started


def check_listener_tls(groups) -> None:
    """Certificate files of every TLS listener are read and checked before any socket opens."""
    from hookaido.server.tls import check_tls_files

    for group in groups:
        for component in group:
            if component.tls is None:
                continue
            try:
                check_tls_files(component.tls)
            except ConfigError as exc:
                problems = [f"{component.name}: {problem}" for problem in exc.problems]
                raise StartupError("compile_config_failed", ["config invalid:", *problems]) from exc


def body_cap(config: Config) -> int:
    """What the HTTP server reads at most: every configured ``max_body`` fits, with slack so
    the apps (not the server) answer an oversized body with their JSON ``413``."""
    largest = max([config.defaults.max_body, *(route.max_body for route in config.routes)])
    return max(BODY_CAP_FLOOR, 2 * largest)


def _metrics_component(metrics) -> Component:
    return Component("metrics", metrics.listen, metrics.prefix, None, None)


def stop_listeners(started, timeout: float = STOP_GRACE) -> None:
    threads = [
        threading.Thread(target=server.stop, args=(timeout,), daemon=True) for server, _ in started
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 2.0)


def describe_listeners(started) -> list[dict]:
    return [
        {
            "listen": group[0].listen,
            "components": [c.name for c in group],
            "prefixes": {c.name: c.prefix for c in group if c.prefix},
            "tls": any(c.tls is not None for c in group),
        }
        for _, group in started
    ]


# -- dispatcher and pruner ------------------------------------------------------------------


def start_dispatcher(runtime: Runtime):
    if not runtime.config.deliver_routes:
        return None
    from hookaido.dispatcher import Dispatcher

    dispatcher = Dispatcher(runtime)
    dispatcher.start()
    return dispatcher


class Pruner(threading.Thread):
    """Applies retention whenever ``prune_interval`` has passed since the last pass, whether
    that pass was started by this timer or by store activity, until stopped."""

    # The shortest pause between two looks, so a backend that keeps answering "due now"
    # without pruning cannot spin this thread.
    MIN_PAUSE = 0.05

    def __init__(self, backend):
        super().__init__(name="pruner", daemon=True)
        self.backend = backend
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self._pause()):
            try:
                removed = self.backend.prune_when_due()
            except Exception as exc:
                event("queue_prune_failed", level="warn", error=str(exc))
                continue
            if removed and any(removed.values()):
                event("queue_pruned", **{reason: n for reason, n in removed.items() if n})

    def _pause(self) -> float:
        try:
            return max(self.MIN_PAUSE, self.backend.seconds_until_prune_due())
        except Exception:  # a broken backend still gets looked at, just not in a tight loop
            return 1.0


# -- the server -----------------------------------------------------------------------------


class Server:
    """One running Hookaido process: holds the runtime, listeners and background workers."""

    def __init__(self, options: RunOptions):
        self.options = options
        self.runtime: Runtime | None = None
        self.listeners: list = []
        self.dispatcher = None
        self.pruner: Pruner | None = None
        self.trends = None
        self.stopping = threading.Event()
        self.reload_requests: list[str] = []
        self._watch_signature = None

    # start-up --------------------------------------------------------------------------

    def start(self) -> None:
        options = self.options
        if options.dotenv:
            load_dotenv(options.dotenv)
        if options.pid_file:
            write_pid_file(options.pid_file)
        config, fingerprint = compile_config(options.config)
        self._configure_runtime_log(config)
        for warning in config.warnings:
            event("config_warning", level="warn", warning=warning)
        event("config_ok", path=options.config, routes=len(config.routes))

        secrets = load_secrets(config)
        registry = plugin_registry()
        for name in registry.missing:
            from hookaido.plugins import missing_message

            event("plugin_not_found", level="warn", plugin=name, detail=missing_message(name))
        metrics = Metrics()
        backend = open_backend(
            config, options.db, registry, observer=metrics.store_observer(config.backend)
        )
        try:
            self._start_runtime(config, secrets, fingerprint, registry, backend, metrics)
        except BaseException:
            self.shutdown()
            if self.runtime is None:
                backend.close()
            raise

    def _start_runtime(self, config, secrets, fingerprint, registry, backend, metrics) -> None:
        from hookaido.nonces import NonceStore

        shell = _RuntimeShell(registry, NonceStore())
        try:
            generation = build_generation(config, secrets, shell, fingerprint, 1)
        except ConfigError as exc:
            raise StartupError("load_auth_failed", [*exc.problems]) from exc
        runtime = Runtime(generation, backend, registry, metrics=metrics)
        runtime.nonces = shell.nonces
        self.runtime = runtime

        from hookaido.server.admin_trends import TrendRecorder

        self.trends = TrendRecorder(backend)
        self.trends.start()
        self.listeners = start_listeners(runtime, self.trends)
        try:
            self.dispatcher = start_dispatcher(runtime)
        except Exception as exc:
            raise StartupError("start_dispatcher_failed", [f"dispatcher: {exc}"]) from exc
        retention = config.retention or Retention()
        if retention.prune_interval:
            self.pruner = Pruner(backend)
            self.pruner.start()
        if self.options.watch:
            self._watch_signature = self._config_signature()
            event("watching_config", path=self.options.config)
        event(
            "server_started",
            pid=os.getpid(),
            config=self.options.config,
            backend=config.backend,
            listeners=describe_listeners(self.listeners),
        )

    def _configure_runtime_log(self, config: Config) -> None:
        runtime_log = config.observability.runtime_log
        level = self.options.log_level
        if not runtime_log.enabled:
            level = "off"
        elif config.observability.runtime_log_configured:
            level = runtime_log.level
        try:
            log.configure(level, runtime_log.output, runtime_log.path)
        except (OSError, ValueError) as exc:
            raise StartupError(
                "start_runtime_log_failed", [f"runtime log {runtime_log.path}: {exc}"]
            ) from exc

    # the main loop ---------------------------------------------------------------------

    def serve_forever(self) -> None:
        while not self.stopping.wait(WATCH_INTERVAL):
            if self.reload_requests:
                # Signals that arrived together ask for the same thing: one reload serves all.
                trigger = self.reload_requests[-1]
                self.reload_requests.clear()
                self._reload_safely(trigger)
            if self.options.watch:
                self._poll_watch()

    def _reload_safely(self, trigger: str) -> None:
        """A reload that fails in an unforeseen way is a failed reload, never a dead process."""
        try:
            self.reload(trigger)
        except Exception as exc:
            event("config_reload_failed", level="error", trigger=trigger, error=repr(exc))

    def _config_signature(self):
        try:
            stat = os.stat(self.options.config)
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def _poll_watch(self) -> None:
        signature = self._config_signature()
        if signature is None or signature == self._watch_signature:
            return
        # Debounce: editors write in several steps; wait until the file holds still.
        while not self.stopping.wait(WATCH_INTERVAL):
            again = self._config_signature()
            if again == signature:
                break
            signature = again
        self._watch_signature = signature
        if not self.stopping.is_set():
            self._reload_safely("watch")

    # reload ----------------------------------------------------------------------------

    def reload(self, trigger: str) -> bool:
        """Compile and apply the config file; the running config stays on any failure."""
        from hookaido.config.loader import restart_required_changes

        if trigger == "signal_sighup":
            # SIGHUP is also the log-rotation signal: continue in fresh log files.
            from hookaido.observability import reopen_log_files

            reopen_log_files()

        runtime = self.runtime
        old = runtime.current
        try:
            config, fingerprint = compile_config(self.options.config)
        except StartupError as exc:
            event("config_reload_failed", level="error", trigger=trigger, error=exc.lines[1:])
            return False
        areas = restart_required_changes(old.config, config)
        if areas:
            event("config_reloaded_restart_required", trigger=trigger, areas=list(areas))
            return False
        try:
            secrets = load_secrets(config)
            generation = build_generation(
                config, secrets, runtime, fingerprint, old.number + 1, previous=old
            )
            # The dispatcher builds its new deliverers before it drains the old ones, so a
            # target it cannot use rejects the whole reload.
            if self.dispatcher is not None:
                self.dispatcher.reload(generation)
        except (StartupError, ConfigError) as exc:
            error = exc.lines if isinstance(exc, StartupError) else exc.problems
            event("config_reload_failed", level="error", trigger=trigger, error=error)
            return False

        runtime.swap(generation)
        self._resize_body_caps(config)
        for warning in config.warnings:
            event("config_warning", level="warn", warning=warning)
        event("config_reloaded_ok", trigger=trigger, generation=generation.number)
        return True

    def _resize_body_caps(self, config: Config) -> None:
        """A route's ``max_body`` changes live, so the HTTP servers' own cap follows it."""
        cap = body_cap(config)
        for server, group in self.listeners:
            if group[0].name != "metrics":
                server.set_max_body(cap)

    # shutdown --------------------------------------------------------------------------

    def shutdown(self) -> None:
        stop_listeners(self.listeners)
        self.listeners = []
        if self.dispatcher is not None:
            try:
                self.dispatcher.stop(STOP_GRACE)
            except Exception as exc:
                event("dispatcher_stop_failed", level="warn", error=str(exc))
            self.dispatcher = None
        if self.trends is not None:
            self.trends.stop()
            self.trends = None
        if self.pruner is not None:
            self.pruner.stopping.set()
            self.pruner.join(timeout=2.0)
            self.pruner = None
        if self.runtime is not None:
            try:
                self.runtime.backend.close()
            except Exception as exc:
                event("queue_close_failed", level="warn", error=str(exc))
            self.runtime = None


@dataclass
class _RuntimeShell:
    """What building a generation needs before the ``Runtime`` exists."""

    registry: object
    nonces: object


def _install_signals(server: Server) -> None:
    def stop(signum, frame):
        if server.stopping.is_set():
            # A second stop signal while shutting down: the operator wants out now.
            event("shutdown_forced", level="warn", signal=signal.Signals(signum).name)
            remove_pid_file(server.options.pid_file)
            os._exit(1)
        server.stopping.set()

    def reload(signum, frame):
        server.reload_requests.append("signal_sighup")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)


def run(options: RunOptions) -> int:
    """Run until SIGTERM/SIGINT. Returns the process exit code."""
    log.configure(options.log_level)
    server = Server(options)
    _install_signals(server)
    try:
        server.start()
    except StartupError as exc:
        event(exc.event_name, level="error", error=exc.lines)
        remove_pid_file(options.pid_file)
        for line in exc.lines:
            print(line, file=sys.stderr)
        return 1
    except HookaidoError as exc:
        event("startup_failed", level="error", error=str(exc))
        remove_pid_file(options.pid_file)
        print(f"hookaido: {exc}", file=sys.stderr)
        return 1

    started = time.monotonic()
    try:
        server.serve_forever()
    finally:
        event("server_stopping", uptime_seconds=round(time.monotonic() - started, 3))
        server.shutdown()
        remove_pid_file(options.pid_file)
        event("server_stopped")
    return 0
