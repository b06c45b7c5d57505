"""snn_autonomy: event-camera sensing-to-action runtime with early-exit SNN perception.

Layers (dependencies point downwards only; only `ros/` imports rclpy):
ros/, cli.py > fleet/, attention/, control/ > perception/, backends/, monitor/ >
sensors/, sim/ > events/
"""
__version__ = "0.1.0"
