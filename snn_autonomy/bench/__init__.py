"""Benchmarks behind `snn-autonomy bench ...`; each returns a JSON-ready dict."""
