"""What one user's spawn request is checked against: a :class:`RequestContext`.

The form's initial preview, ``POST /hub/api/hpchub/v1/preview`` and the spawn itself
all validate the same options against the same facts: the cluster's partitions, the
user's projects (and their Slurm accounts), the catalogue, the ready environments of
each project and the site's defaults. The spawner gathers them once per request
(``SlurmGPUSpawner.request_context``) into this frozen value, so the three cannot
disagree on what is allowed.

Pure: no subprocess, no JupyterHub. It joins the Slurm layer's rules to the ledger's
:class:`~hub.ledger.types.Booking` (what a preview asks the ledger), so it sits with the
spawner's adapters, above the ledger.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from hub.ledger.types import Booking
from spawners.catalog import Catalogue
from spawners.slurm.options import validate_user_options
from spawners.slurm.types import ClusterInfo, JobRequest, PartitionInfo


class PreviewLedger(Protocol):
    """The part of the ledger a preview reads (``hub.ledger.Ledger`` is one)."""

    def preview(self, name: str, user: str, booking: Any, *, lab_hours_on: bool | None = None) -> Any: ...


@dataclass(frozen=True)
class RequestContext:
    """One user's spawn facts at one request; :meth:`validate` is the only option check."""

    user: str
    cluster: ClusterInfo
    accounts: Mapping[str, str]  # the user's projects -> their Slurm accounts, in the user's order
    catalogue: Catalogue
    project_environments: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # project -> ready names
    default_hours: Decimal = Decimal(1)
    default_gpus: int = 1

    @property
    def projects(self) -> tuple[str, ...]:
        return tuple(self.accounts)

    @property
    def unavailable_environments(self) -> dict[str, str]:
        """Catalogue ids the site has not built -> why."""
        return {entry.id: entry.unavailable_reason for entry in self.catalogue if not entry.available}

    def partition(self, request: JobRequest) -> PartitionInfo:
        return self.cluster.partitions[request.partition]

    def validate(self, options: Mapping[str, Any]) -> JobRequest:
        """The job these options ask for, or :class:`~spawners.slurm.options.OptionsError`
        naming the field and the limit; the project's Slurm account is filled in."""
        request = validate_user_options(
            options,
            cluster=self.cluster,
            projects=list(self.projects),
            catalogue_ids=self.catalogue.ids(),
            default_environment=self.catalogue.default.id,
            default_hours=self.default_hours,
            default_gpus=self.default_gpus,
            project_environments={name: list(names) for name, names in self.project_environments.items()},
            unavailable_environments=self.unavailable_environments,
        )
        account = self.accounts.get(request.project, request.project)
        if account != request.project:
            request = dataclasses.replace(request, account=account)
        return request

    def preview(
        self, options: Mapping[str, Any], ledger: PreviewLedger, *, lab_hours_on: bool | None = None
    ) -> tuple[JobRequest, Any]:
        """The validated request and what admission would answer now (nothing is held)."""
        request = self.validate(options)
        booking = Booking(request.gpu_type, request.gpus, request.hours)
        admission = ledger.preview(request.project, self.user, booking, lab_hours_on=lab_hours_on)
        return request, admission


def ready_names(ready: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Project -> its ready environment names, as a frozen context holds them."""
    return {project: tuple(names) for project, names in ready.items()}
