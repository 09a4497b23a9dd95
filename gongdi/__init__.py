"""The platform kit every service uses: event store, relay, consumer, settings, logging, runtime, CLI."""
