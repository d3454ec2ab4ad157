"""``python -m postoffice``: the same entry point as the ``postoffice`` command."""

from postoffice.cli.main import main

if __name__ == "__main__":
    main()
