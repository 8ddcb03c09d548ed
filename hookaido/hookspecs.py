"""The hook specification: the whole contract between Hookaido and its plugins.

A plugin is a module (or object) with functions decorated by ``hookaido.hookimpl`` whose
names match the hooks below. It is found through the ``hookaido`` entry-point group, exactly
as the built-in plugins are. Every hook is a ``register_*`` hook: Hookaido calls it once at
start-up with a ``register`` callback, and the plugin calls ``register(...)`` once for each
thing it provides. Nothing is returned.

Each ``register`` callback takes the same three arguments:

``name``
    The word that selects the thing in the Hookaidofile (``auth NAME``, ``queue NAME``,
    ``deliver NAME-or-URL``, ``sign NAME``). Names are case-sensitive and lower-case by
    convention. Registering a name twice is a start-up error naming both plugins.
``factory``
    A callable that builds the thing from its compiled options (see each hook).
``schema``
    Optional JSON Schema (draft 2020-12) for the options block of the thing, as plain
    data produced from the Hookaidofile. It is merged into the core schema: ``hookaido
    config validate`` checks user configs against it and reports violations with their
    file, line and column. The schema also tells the parser how many values each option
    directive takes: a ``string``/``number``/``integer``/``boolean`` property takes one
    value, an ``array`` property takes every value up to the next directive, an
    ``object`` property takes a ``{ ... }`` block.
"""

import pluggy

hookspec = pluggy.HookspecMarker("hookaido")
hookimpl = pluggy.HookimplMarker("hookaido")


# --------------------------------------------------------------------------------------
# Inbound authentication
# --------------------------------------------------------------------------------------


@hookspec
def register_auth(register):
    """Register inbound verifiers, selected by ``auth NAME ...`` inside a route.

    Called once at start-up. Call ``register(name, factory, schema=None)``.

    ``factory(options, context)`` is called when a config is compiled or reloaded, once per
    route that names the verifier. ``options`` is the plain-data options of the directive
    (the positional values under ``"args"`` plus the block's directives by name);
    ``context`` is a ``hookaido.auth.AuthContext`` giving the route path, the secret
    resolver and the process-wide nonce store. It returns an object with one method:

    ``verify(request) -> hookaido.auth.Verdict``
        ``request`` is a ``hookaido.auth.InboundRequest`` (method, path, query, headers,
        body bytes, remote address, received time). The verdict either allows the webhook
        or refuses it with an HTTP status (401, 403 or 503) and a stable error ``code``.
        A verdict may carry ``on_enqueued`` and ``on_refused`` callbacks, run after the
        webhook was durably stored or refused later in the pipeline (used to make replay
        protection claims permanent or to release them). An allowing verdict may also carry
        ``headers`` to store with the webhook, replacing inbound headers of the same name.

    Conventions the ingress follows with every verifier:

    - **Header names are canonical.** ``request.headers`` has each name with every
      ``-``-separated word capitalised and the rest lower case (``x-github-event`` arrives as
      ``X-Github-Event``), whatever case the sender used; ``request.header(name)`` looks a
      header up ignoring case.
    - **``needs_body = False``** as an attribute of the verifier makes it run before the body
      is read, with ``request.body == b""``: a refusal then costs no body read and no
      ``max_body`` check. Without the attribute (or with ``True``) it runs after the body was
      read and checked against ``max_body``.
    - **``Verdict.headers`` are merged into the stored headers** after the inbound ones were
      canonicalised and credentials (``Authorization``, ``Cookie``, ...) were left out: a
      verdict header replaces an inbound header of exactly the same name and is otherwise
      added, and counts towards ``max_headers``. Give the names in canonical form
      (``X-Auth-User``) so they replace what the sender sent.

    Raise ``hookaido.errors.ConfigError`` from the factory for options that cannot work.
    """


# --------------------------------------------------------------------------------------
# Queue backends
# --------------------------------------------------------------------------------------


@hookspec
def register_backends(register):
    """Register queue backends, selected by ``queue NAME`` / ``queue { backend NAME }``.

    Called once at start-up. Call ``register(name, factory, schema=None)``.

    ``factory(settings)`` is called once when ``hookaido run`` starts, with a
    ``hookaido.queue.BackendSettings`` (database path, queue limits, retention rules).
    It returns an instance of a ``hookaido.queue.QueueBackend`` subclass. The shared
    contract suite in Hookaido's ``tests/`` runs against every registered backend.

    ``settings.observer`` (a ``hookaido.queue.backend.StoreObserver``, or ``None``) is how a
    backend reports its own operations without importing Prometheus: ``observe(operation,
    seconds)``, ``count(operation)`` and ``error(operation, kind)`` become the
    ``hookaido_store_*`` metrics labelled with the backend's name. Subclasses of
    ``BackendBase`` call them on ``self.observer``, which is never ``None``.
    """


# --------------------------------------------------------------------------------------
# Push delivery
# --------------------------------------------------------------------------------------


@hookspec
def register_deliverers(register):
    """Register deliverers, selected by the first value of ``deliver`` in a route.

    Called once at start-up. Call ``register(name, factory, schema=None)``. ``name`` is a
    URL scheme (``https``, ``http``) matched against a target URL, or a keyword such as
    ``exec`` written as ``deliver exec "command" { ... }``.

    ``factory(target, context)`` is called when a config is compiled or reloaded, once per
    deliver target. ``target`` is the compiled ``hookaido.config.model.DeliverTarget``;
    ``context`` is a ``hookaido.delivery.DeliveryContext`` (egress policy, signer lookup).
    It returns an object with:

    ``deliver(envelope) -> hookaido.delivery.Outcome``
        Make one attempt to hand the envelope on. The outcome says ``acked``, ``retry``
        (with an optional minimum delay such as a ``Retry-After``) or ``dead`` (with a
        reason), plus the status code and error text recorded as the attempt.
    ``close()``
        Release pooled connections; called when the config is replaced or at shutdown.
    """


# --------------------------------------------------------------------------------------
# Outbound signing
# --------------------------------------------------------------------------------------


@hookspec
def register_signers(register):
    """Register outbound signers, selected by ``sign NAME ...`` inside a ``deliver`` block.

    Called once at start-up. Call ``register(name, factory, schema=None)``.

    ``factory(sign_config, context)`` is called when a config is compiled or reloaded, once
    per deliver target that signs. It returns an object with one method:

    ``sign(method, url, body, now) -> dict[str, str]``
        The headers to add to the outgoing request.
    """
