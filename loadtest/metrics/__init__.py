"""Measurements that merge: histograms, run summary, SLO gate (core); exporters (edge)."""
