"""The `corridor` CLI's subcommands, one module per family of commands."""
