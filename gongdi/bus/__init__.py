"""The bus: the relay that publishes committed events, the ordered consumer, stream set-up."""
