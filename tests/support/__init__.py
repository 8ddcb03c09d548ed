"""What the test folders share: loopback ports, an HTTP client and a waitress server on
127.0.0.1, and a ``hookaido run`` subprocess. Imported by conftest files and test modules."""
