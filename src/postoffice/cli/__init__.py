"""The ``postoffice`` command line."""
