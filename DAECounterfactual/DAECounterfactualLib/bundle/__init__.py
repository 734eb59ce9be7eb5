"""Model bundles: spec (config, tasks), schema, store (read, verify, write, manifest) and the registry of bundled
names. Imports ``model`` and ``io``.
"""
