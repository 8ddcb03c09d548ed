"""The plugin registers itself through its entry point, as any pip-installed plugin would."""

from hookaido_deliver_http.deliverer import HTTPDeliverer

from hookaido.plugins import load_registry


def test_http_and_https_targets_are_delivered_by_this_plugin(monkeypatch):
    monkeypatch.setenv("HOOKAIDO_LOAD_PLUGINS", "deliver_http")

    registry = load_registry()

    for scheme in ("https", "http"):
        registration = registry.get("deliverer", scheme)
        assert (registration.plugin, registration.factory) == ("deliver_http", HTTPDeliverer)
    assert registry.plugins["deliver_http"].source == "hookaido-deliver-http"
