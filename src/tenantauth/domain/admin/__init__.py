"""The admin plane: admin API keys and their scopes, the hash-chained audit log and master-key
rotation (docs/design.md, "Admin plane" and "Master-key rotation")."""
