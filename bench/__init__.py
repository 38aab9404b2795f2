"""hexmarket's benchmarks: each figure measured against a ceiling in the same run.

Run with ``make bench`` (``python -m bench``); ``make bench-smoke`` runs every figure at tiny
sizes so the code cannot rot. See ``docs/benchmarks.md`` for the method and the latest table.
"""
