"""Pilot: config + service registries in, Envoy v3 resources out over ADS.

Three layers, as in Istio: `model` (immutable snapshots of config, services and
proxies), `networking` (pure translation: model -> Envoy protos) and `xds` (the ADS
server: streams, versions, ACK/NACK, pushes).  serve -> translate -> model, never back.
"""
