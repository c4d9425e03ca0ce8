"""Deputy's chat side: channel adapters, gateway, web console and the command line."""
