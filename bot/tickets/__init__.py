"""Tickets for grid workers: organisation, routing, lifecycle, deadlines, notifications, statistics."""
