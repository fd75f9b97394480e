"""The spawn form's side of ``SlurmGPUSpawner``: ``FormHooks``, a mixin with the form's
post (``options_from_form``), its re-render after a refusal (``_note_form_error``,
``_FORM_RETRY``) and its rendering with each project's budget (``_render_options_form``,
``_form_budget``). The form's model is the pure :mod:`.form`, its HTML ``templates/spawn_form.html``
(rendered through the hub's Jinja environment, so a site's template wins). Kept apart from ``spawner``
(the spawn protocol); the ``options_form`` default stays on the spawner class
(a traitlets ``@default``).
"""

from __future__ import annotations

import asyncio

from spawners.slurm.client import SlurmCommandError
from spawners.slurm.form import (
    SCRIPT_NAME,
    FormError,
    FormModel,
    form_model,
    no_cluster_account_notice,
    render_form,
    render_form_async,
    slurm_not_answering_notice,
)  # fmt: skip
from spawners.slurm.form_budget import initial_preview, project_budgets
from spawners.slurm.options import ALLOWED_KEYS
from spawners.slurm.request_context import RequestContext
from spawners.slurm.ttl_cache import _TTLCache

NO_CLUSTER_ACCOUNT_GROUP = "hpchub-no-cluster-account"  # set at login by hub.auth.oidc
STATIC_PREFIX = "hpchub/static/"  # below the hub's URL: templates/static/ (hub.static_files)
# A form post's values (and its refusal) by user name, for the form JupyterHub renders
# again when the spawn is refused (it renders the user's default server's form).
_FORM_RETRY = _TTLCache()
FORM_RETRY_SECONDS = 60


class FormHooks:
    """The spawn form's hooks. Mixed into ``SlurmGPUSpawner`` (which gives ``user``, ``ledger``,
    ``catalogue``, ``cluster_info``, ``project_accounts``, ``course_lab_hours`` and ``default_hours``)."""

    def options_from_form(self, formdata: dict) -> dict:
        """Form fields are lists of strings; keep one value per allowed key (validated later).

        The posted values are kept for a moment so that, if the spawn is refused, the form
        JupyterHub renders again shows what the user chose, with the error under its field.
        """
        options = {
            key: values[0] for key, values in formdata.items() if key in ALLOWED_KEYS and values and values[0] != ""
        }
        _FORM_RETRY.put(self.user.name, {"values": dict(options), "error": None}, FORM_RETRY_SECONDS)
        return options

    def _note_form_error(self, field: str, message: str) -> None:
        """A refused spawn from the form: remember the field and the message for the re-render."""
        retry = _FORM_RETRY.get(self.user.name)
        if isinstance(retry, dict):
            retry["error"] = (field, message)

    async def _render_options_form(self, spawner) -> str:
        if any(group.name == NO_CLUSTER_ACCOUNT_GROUP for group in self.user.groups):
            return await self._render_form(FormModel(notice=no_cluster_account_notice(self.user.name)))
        try:
            context = await self.request_context()
        except SlurmCommandError as exc:
            return await self._render_form(FormModel(notice=slurm_not_answering_notice(exc.summary)))
        projects = list(context.projects)
        retry = _FORM_RETRY.pop(self.user.name)
        previous = dict(self.user_options or {})
        error = None
        if isinstance(retry, dict):  # a refused post: show what was chosen and why it was refused
            previous = retry["values"]
            if retry["error"]:
                error = FormError(*retry["error"])
        lab_hours = {project: (await self.course_lab_hours(project))[1] for project in projects}  # the rule's
        budgets, preview = await asyncio.to_thread(self._form_budget, context, previous, lab_hours)
        model = form_model(
            context.cluster, projects, context.catalogue, previous, budgets, error=error, preview=preview,
            preview_url=f"{self.hub.base_url}api/hpchub/v1/preview" if self.ledger is not None else "",
            script_url=f"{self.hub.base_url}{STATIC_PREFIX}{SCRIPT_NAME}",
            project_environments=context.project_environments,
        )  # fmt: skip
        return await self._render_form(model)

    async def _render_form(self, model: FormModel) -> str:
        """``model`` through ``spawn_form.html``: with the hub's own Jinja environment, which reads
        ``c.JupyterHub.template_paths``, so a site's template comes first."""
        environment = (getattr(self.user, "settings", None) or {}).get("jinja2_env")
        if environment is None:
            return render_form(model)
        return await render_form_async(model, environment)

    def _form_budget(self, context: RequestContext, previous: dict, lab_hours: dict[str, bool | None] | None = None):
        """What each project has left and the preview of the initial choices (in a worker thread);
        ``lab_hours``: per course project whether its lab hours are on now."""

        ledger = self.ledger
        if ledger is None:
            return {}, None
        budgets = project_budgets(ledger, self.user.name, context.cluster, list(context.projects), lab_hours)
        return budgets, initial_preview(ledger, context, previous, budgets, lab_hours)
