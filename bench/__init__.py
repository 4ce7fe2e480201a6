"""fspai benchmark suite (pytest-benchmark suites, baselines, workloads, ``ratios.py``).

See bench/README.md.
"""
