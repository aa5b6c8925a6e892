"""Channel adapters: translate each messenger's events into Incoming and render the core's Replies."""
