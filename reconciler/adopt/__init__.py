"""Bringing stores that exist already under management: :mod:`.export` writes manifests that
describe the live stores (``reconciler export``)."""
