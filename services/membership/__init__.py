"""Membership: sites, workforce, members present, branches and party groups."""
