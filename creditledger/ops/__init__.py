"""Operating the system: health and readiness, Prometheus metrics, structured logs."""
