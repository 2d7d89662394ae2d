"""The admin API: one blueprint per module (tenants, users, clients, tokens, revocations,
resource servers, admin keys, the audit log), their schemas, and the audit record of every
admin action. Everything here needs an admin credential (``api.auth``).
"""
