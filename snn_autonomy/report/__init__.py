"""The run report: figures and plots computed from a run's MCAP recording."""
