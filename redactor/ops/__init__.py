"""Operations: health and readiness, Prometheus metrics, logging configuration, the admin app,
YAML-with-schema loading, and the demo and detect commands."""
