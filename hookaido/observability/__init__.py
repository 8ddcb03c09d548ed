"""Runtime log, access log and Prometheus metrics."""
