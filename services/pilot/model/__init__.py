"""Pilot's model: immutable snapshots that translation reads."""
