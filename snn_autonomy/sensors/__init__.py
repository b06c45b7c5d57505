"""Event sources behind one interface: built-in world camera, bag and RAW replay, emulators, drivers."""
