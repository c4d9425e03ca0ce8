"""The web console: Deputy's own chat page, served by the gateway."""
