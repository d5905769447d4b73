"""The pytest modules users run (`pytest benchmarks`), with the matrix and its expectations."""
