"""Hook implementations of the deliver_http plugin: ``deliver "https://..."`` and ``http://``."""

from hookaido.hookspecs import hookimpl
from hookaido_deliver_http.deliverer import HTTPDeliverer


@hookimpl
def register_deliverers(register):
    # The deliver block's directives (retry, timeout, header, sign) are compiled by the core
    # into DeliverTarget, so this plugin adds no options of its own to the schema.
    register("https", HTTPDeliverer)
    register("http", HTTPDeliverer)
