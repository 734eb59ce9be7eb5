"""Model bundles: spec (config, tasks, latent statistics), schema, store (read, verify, write) and the registry of
bundled names. Imports ``model`` and ``io``.
"""
