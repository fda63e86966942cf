"""The emulator of KMS custom key stores on moto, and a local XKS proxy (:mod:`.xks_proxy`).

It imports nothing from the rest of ``reconciler``: it could be offered to moto as it stands.
See docs/emulator.md for what it implements and where it differs from moto.
"""
