"""The sensing-to-action loop of one robot in one process (fused mode), and headless
closed-loop runs of a fleet in the built-in world."""
