"""The listeners, the falcon apps and ``hookaido run``."""
