"""``python -m bench``: Helix measured against the raw tools, side by side, in one run.

The machines Helix runs on are shared and noisy, so every figure is a ratio or a distribution
measured in the same run, with the contenders alternated round by round and the median taken.
Each section runs in its own Python process (``bench.isolate``) so one section's memory and
threads cannot colour another's numbers. See ``bench/README.md`` for the latest table.
"""
