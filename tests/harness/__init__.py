"""Reusable pieces of the harness: paths, helm, manifests, processes, the local cluster."""
