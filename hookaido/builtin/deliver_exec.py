"""Built-in plugin deliver_exec."""
