"""The benchmark behind docs/BENCHMARKS.md: `python -m scripts.bench --help`.

cli (the command), plan (what runs where), rt and alt (worker processes, one per measurement,
`python -m scripts.bench.rt TASK PARAMS_JSON`), common (worker protocol, synthetic inputs),
metrics, report and plot (the markdown and the figure). Timing is har_runtime.benchmark's.
"""
