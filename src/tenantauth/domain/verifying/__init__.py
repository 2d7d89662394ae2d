"""Verification state: the key resolver and what stands between it and storage: the worker's
memory, its lease and acknowledged invalidation, warming, the tenant directory and
single-flight reads (docs/design.md, "Verifying from memory" and "Cache protocol").

These modules change together: each guards a step of the revocation guarantee.
"""
