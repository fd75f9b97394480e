"""The site's allocation settings: one configurable class (``c.HPCHubAllocations.*``)."""

from __future__ import annotations

from traitlets import Integer, List, TraitError, Unicode, validate
from traitlets.config import Configurable

from hub.mail.settings import HPCHubMail
from spawners.names import LEDGER_ACCOUNT, anchored

_ACCOUNT_RE = anchored(LEDGER_ACCOUNT)


class HPCHubAllocations(Configurable):
    slurm_parent_account = Unicode(
        "root",
        help="The Slurm account under which an award creates each new project's account (sacctmgr add account "
        "NAME parent=THIS). Default 'root'. Example: 'awards' (an account the site made for awarded projects).",
    ).tag(config=True)
    provision_command = List(
        Unicode(),
        default_value=[],
        help="An argv run (no shell) for a new project member without a Unix account, with the principal and "
        "the account name the login maps to appended, e.g. ['/usr/local/sbin/hpc-provision'] runs "
        "'/usr/local/sbin/hpc-provision kim@nova-ai.example c-kim-nova-ai'. Default [] (the site's identity "
        "management creates accounts; the member sees the 'no cluster account yet' page until then). "
        "The demo: its own hook, which creates the Unix user.",
    ).tag(config=True)
    provision_timeout = Integer(
        60,
        help="Seconds the provision_command may run before it is stopped and reported. Default 60. Example: 120.",
    ).tag(config=True)
    data_grace_days = Integer(
        90,
        help="Days after an expired project's end until the admin page lists its space for archiving (the portal "
        "deletes no data). Default 90. Example: 30.",
    ).tag(config=True)
    reviewer_groups = List(
        Unicode(),
        default_value=["hpc-reviewers"],
        help="Identity-provider groups whose members may be assigned as reviewers. Default ['hpc-reviewers'].",
    ).tag(config=True)
    call_manager_groups = List(
        Unicode(),
        default_value=["hpc-call-managers"],
        help="Identity-provider groups whose members manage calls (create calls, assign reviewers, decide), "
        "besides the hub's admins. Default ['hpc-call-managers'].",
    ).tag(config=True)
    attachment_dir = Unicode(
        "",
        help="Where proposals' PDF attachments are stored, outside every directory the hub serves (created "
        "mode 0700). Default '' (attachments refused). Example: '/var/lib/hpchub/attachments'; the demo: "
        "STATE_DIR/attachments.",
    ).tag(config=True)

    @property
    def portal_url(self) -> str:
        """The portal's public address for links in mail: ``c.HPCHubMail.portal_url`` (one setting)."""
        return HPCHubMail(config=self.config).portal_url

    @validate("slurm_parent_account")
    def _valid_parent(self, proposal):
        value = proposal["value"]
        if value != "root" and not _ACCOUNT_RE.fullmatch(value):
            raise TraitError(f"c.HPCHubAllocations.slurm_parent_account: not a Slurm account name: {value!r}")
        return value

    @validate("data_grace_days", "provision_timeout")
    def _positive(self, proposal):
        if proposal["value"] < 1:
            raise TraitError(
                f"c.HPCHubAllocations.{proposal['trait'].name} must be at least 1, got {proposal['value']}"
            )
        return proposal["value"]
