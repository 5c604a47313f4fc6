"""Command-line interface: ``pointlens <command> ...``; one module per subcommand, each a few lines over the library."""
