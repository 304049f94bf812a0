"""Citadel: the mesh CA.  Signs workload CSRs over Istio's CSR API (gRPC + TLS), after
authenticating the caller's bearer token, and publishes the trust bundle on NATS.

Root rotation (`rotation/`), as Istio's root-expiry outage (istio #14516) taught: a root is
never swapped out from under the mesh.  Three steps, each taken only once what it needs is
observed, or a documented time has passed for what cannot be observed:

1. begin: a new self-signed root (new key, its own name) is published beside the old one.
   The trust bundle (KV `mesh-trust`, citadel's root-cert.pem, on Kubernetes the
   `istio-ca-root-cert` ConfigMaps and webhook caBundles) becomes [old, new]; the old
   root still signs.
2. switch: once every proxy reporting on NATS says its Envoy ACKed a ROOTCA holding the new
   root (KV `mesh-trust-status`, one entry per proxy, expiring when the proxy goes away),
   and the phase has lasted `root_rotation_min_phase_s`, the new root signs.  The bundle
   becomes [new, old]; agents renew at once when the bundle names another root first than
   their certificate's, and so do pilot's, the injector's and galley's serving certificates
   (they poll citadel's roots file every 2 s); citadel's own CSR-API certificate is renewed
   on the next handshake.
3. drop: once no reporting proxy presents a certificate from the old root (and each trusts
   the new one), and the phase has lasted `root_rotation_min_phase_s` again, the bundle
   becomes [new]; agents drop the retired root at once (a root that leaves the bundle while
   it is not first was retired by this rotation; one that vanishes while first is kept for
   the agent's `root_retention_s`).

`root_rotation_min_phase_s` (default 300 s) is the bound for holders that cannot report:
proxies without NATS (on Kubernetes they read the mounted `istio-ca-root-cert`, which the
kubelet refreshes within about two minutes, and which the agent polls) and the control
plane's serving certificates.  A proxy that stays but never moves holds the rotation up,
and is named by `GET /ca/rotation` and `mizzenctl x ca status`.

Triggers: automatic once less than `root_rotation_auto_fraction` of the root's life remains
(20%, as Istio's self-signed root rotator), or on demand with `POST /ca/rotation` on the
monitoring port from citadel's own host (`mizzenctl x ca rotate`).  Each step is saved in
the CA store (the state dir's files, or the `istio-ca-secret` Secret) before anything is
published, so a restarted citadel carries on where it was.  A plugged-in CA (cacerts) is
never rotated by citadel: its roots are the operator's.
"""
