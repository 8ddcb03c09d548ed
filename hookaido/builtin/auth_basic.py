"""Built-in plugin auth_basic."""
