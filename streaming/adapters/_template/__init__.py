"""A documented skeleton of a new exchange adapter, and the contract every adapter meets.

README.md in this folder has the requirement table (required vs optional); adapter.py and live.py
are the skeletons to copy; contract.py holds the checks tests run against every real adapter.
"""
