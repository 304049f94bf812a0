"""Mizzen's benchmarks: `make bench` runs each `bench/<part>` package's `main()`."""
