"""Operating the platform: embedded servers, the supervisor, the client, readiness and status."""
