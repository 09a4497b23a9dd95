"""Pure tests: rules, contracts, deployment files."""
