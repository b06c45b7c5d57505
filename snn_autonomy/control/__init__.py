"""Perception -> velocity command: a patrol policy, velocity limits and a safety watchdog."""
