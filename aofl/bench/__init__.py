"""Benchmarks behind `python -m aofl bench`: each prints ratios against a baseline measured in the same run."""
