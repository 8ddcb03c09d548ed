"""Built-in plugin auth_forward."""
