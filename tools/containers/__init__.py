"""Mizzen in containers: the images `make images` builds (a Debian base made with
debootstrap when no registry answers), the docker-compose mesh, and its start-up helpers.

`python -m tools.containers images` builds the images; `compose up|down|context` runs
docker-compose.yml and points mizzenctl at it (`make compose-demo`, `make compose-down`).
In the compose mesh, `identities` is the init container (a token and citadel's root per
proxy) and `pilot-front` serves every pilot replica's /debug/* on one port.
"""
