"""The service kit: settings, logging, the command pipeline and the declaration every service is built from."""
