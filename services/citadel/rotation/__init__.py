"""Citadel's own root rotation: the phases (pure), the driver, and its admin endpoint."""

from services.citadel.rotation.phases import Action, RotationPolicy, Step, auto_rotation_at, decide
from services.citadel.rotation.rotator import RootRotator, Rotatable

__all__ = ["Action", "RootRotator", "Rotatable", "RotationPolicy", "Step", "auto_rotation_at", "decide"]
