"""Framework backends: the only modules that know framework version quirks."""
