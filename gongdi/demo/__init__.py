"""The demo city of the report, sent as ordinary commands, and sample commands for tests and benchmarks."""
