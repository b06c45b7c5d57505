"""Action-to-sensing: what the robot's motion and knowledge say it should sense next."""
