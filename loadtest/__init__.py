"""Load tests for the Langflow platform: Locust scenarios (IDE users, synchronous and queued flow runs),
load shapes, a local installation started from the charts, and the report (reports/load.json, HTML, plots).

Run `python -m loadtest.run --help` (or `make loadtest HOST=... DURATION=...`).
"""
