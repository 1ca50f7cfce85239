"""Example third-party snnplug plugin (template)."""
