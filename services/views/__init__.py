"""Views: read models fed by the event streams, and the queries over them."""
