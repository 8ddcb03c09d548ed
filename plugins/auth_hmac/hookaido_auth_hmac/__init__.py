"""Hookaido plugin package auth_hmac."""
