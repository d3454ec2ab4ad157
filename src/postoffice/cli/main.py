"""Entry point of the ``postoffice`` command (placeholder until the CLI lands)."""

import click


@click.group()
def cli() -> None:
    """postoffice: a complete Internet mail system."""


def main() -> None:
    cli()
