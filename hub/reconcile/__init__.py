"""The reconciler and its watches: the daemons that keep Slurm, the ledger and the sessions in step."""
