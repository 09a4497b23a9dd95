"""The event store: events, commands, site streams and their snapshots, schema migrations."""
