"""Shared fixtures: free loopback ports, a running ``hookaido run`` subprocess, backends."""
