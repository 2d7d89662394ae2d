"""OAuth 2.0: clients, the token endpoint's grants, refresh-token families, resource servers and
RFC 7662 introspection (docs/design.md, "Refresh tokens and the OAuth endpoints")."""
