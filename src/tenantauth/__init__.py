"""tenantauth: multi-tenant JWT issuing and verification with instant revocation."""

__version__ = "0.1.0"
