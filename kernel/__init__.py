"""What every layer may import: settings, the message and card types, the outbox's write side, Redis
key names and job names. It imports nothing of Deputy's own beyond itself."""
