"""The HTTP face of the platform: the API, the dashboard's pages and their live updates, for people's browsers."""
