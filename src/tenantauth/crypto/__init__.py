"""Pure cryptography: secret generation, envelope encryption and strict compact-JWT parsing.

Nothing here does I/O or knows about tenants' storage; it only imports ``tenantauth.errors``
and the crypto libraries.
"""
