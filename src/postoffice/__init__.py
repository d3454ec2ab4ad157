"""postoffice: a complete Internet mail system in one Python package.

The package is layered (see DESIGN.md §2); a lower layer never imports a
higher one:

    cli -> server -> {queue, delivery, directory, store, mailauth, mime} -> protocol -> core

``config`` sits beside ``core``: typed settings every layer may read.
"""

__version__ = "0.1.0"
