"""`python -m scripts.bench`: see scripts.bench.cli."""
from scripts.bench.cli import main

main()
