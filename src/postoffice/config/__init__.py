"""Typed configuration: the TOML file, its models and its loader (see ``config.model``)."""
