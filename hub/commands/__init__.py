"""The ``hpchub`` subcommands that administer the ledger, courses and environments."""
