"""The local mesh: Mizzen's processes on one machine, supervised, on loopback addresses."""
