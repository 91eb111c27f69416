"""Grafana dashboards as code (grafana-foundation-sdk). `python -m dashboards.generate` (`make dashboards`)
writes dashboards/*.json and syncs the chart's copies (charts/langflow-monitoring/files/)."""
