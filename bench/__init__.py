"""Benchmarks: one module per figure, run with `make bench` (results in bench/results/)."""
