"""mizzenctl: Mizzen's command line (istioctl's counterpart)."""
