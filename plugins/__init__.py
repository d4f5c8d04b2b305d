"""ltengine's built-in plugins (installed as the ``ltengine_plugins`` package)."""
