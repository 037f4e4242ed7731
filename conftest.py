# Doctests run over the package too (pyproject: --doctest-modules); __main__ would run the CLI.
collect_ignore = ["mlxq/__main__.py", "setup.py", "tools", "benchmarks"]
