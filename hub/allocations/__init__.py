"""Allocations beyond the ledger's records: the award that makes a project in Slurm, on disk and
in the ledger all or nothing (``award``), the site's settings (``settings``) and the provisioning
of new members' Unix accounts (``provision``)."""
