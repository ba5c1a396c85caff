"""Security (owned by the hardening work, issue 7)."""


def register_security(app):
    return None
