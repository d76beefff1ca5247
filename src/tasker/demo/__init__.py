"""The tasker demo application: ``python -m tasker.demo`` (or ``make demo``).

The GTK parts live in ``_app`` and ``_tour``; ``_work`` holds the background
functions and imports no GTK, because worker processes import it.
"""
