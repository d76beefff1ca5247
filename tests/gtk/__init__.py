"""Tests of tasker.gtk and the demo, under a virtual display."""
