"""Measurement while the system runs: latency of every stage, energy of every decision.

Pure Python below `ros/`: the nodes only forward what these modules compute.
"""
