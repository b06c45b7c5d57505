"""Fault injection against a live fleet (`snn-autonomy chaos`)."""
