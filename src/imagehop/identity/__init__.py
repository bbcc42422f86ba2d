"""Identity: users, projects, roles, tokens and the service catalog (Keystone v2.0 and v3)."""
