"""ROS 2 layer: the only package that imports rclpy and message classes.

Nodes here are thin: they convert messages to the core's plain-Python types,
call the core, and convert back.
"""
