"""The platform kit, by role: store, bus, service (pipeline and declarations), ops, cli, demo."""
