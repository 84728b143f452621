"""Offline evaluation: replay estimators over logged traffic, the simulator that validates them, and the
retrieval benchmark behind ``ltrr bench``."""
