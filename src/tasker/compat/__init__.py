"""Bridges for applications moving to tasker from the task managers it grew out of.

``tasker.compat.rayforge`` offers the names and units of Rayforge's
``rayforge.shared.tasker``, over tasker's public API.
"""
