"""The applicant's pages: the open calls and "My proposals", the proposal form, a proposal read
back with its history, and its attachment.

- ``GET /hub/hpchub/apply[?renew=PROJECT]``: open calls (audience, dates, largest request, hours
  left in the round) and the user's proposals; with ``renew``, the calls a renewal of a project
  the user leads may go to.
- ``GET|POST /hub/hpchub/proposals/new?call=NAME[&renew=PROJECT]``: the empty form; a post saves a
  draft or submits (``action``).
- ``GET|POST /hub/hpchub/proposals/{id}``: the form while it is a draft or returned, else the
  proposal read-only (history, the decision's message, reviews if the call shows them, Withdraw).
- ``GET /hub/hpchub/proposals/{id}/attachment``: the PDF as a download, to whoever may see the
  proposal.

Who sees what is ``service.view_of``; the ledger checks every field (a refused field's message
is shown under it, what was typed is kept, nothing is stored). A start-up call's proposal is
awarded at submission (``award.submit``).
"""

from __future__ import annotations

from tornado import web

from hub.allocation_pages import views
from hub.allocation_pages.base import PAGES_PREFIX, AllocationPageHandler
from hub.allocations import attachments, award, service
from hub.allocations.service import Actor, View
from hub.ledger import Ledger
from hub.ledger import allocations as rules
from hub.ledger.allocations import CallInfo, ProposalInfo, ProposalKind
from hub.ledger.errors import LedgerInputError, NotFound
from hub.ledger.types import Role

_ID = r"([0-9]{1,11})"


def _led_projects(ledger: Ledger, user: str) -> list[str]:
    """The projects ``user`` leads (pi or manager): the ones they may ask a renewal for."""
    return sorted(info.name for info, role in ledger.memberships(user) if role in (Role.PI, Role.MANAGER))


def apply_page(ledger: Ledger, user: str, today) -> dict:
    calls = ledger.calls()
    rows = [views.call_row(info, ledger.call_awarded_mgs(info.name), today) for info in calls if info.is_open(today)]
    mine = [views.proposal_row(info) for info in ledger.proposals(applicant=user, limit=200)]
    return {"calls": rows, "proposals": mine, "led": _led_projects(ledger, user)}


class ApplyHandler(AllocationPageHandler):
    @web.authenticated
    async def get(self) -> None:
        ledger = await self.ledger()
        user = self.current_user.name
        page = await self.run(apply_page, ledger, user, self.today(ledger))
        renew = self.get_argument("renew", "") or None
        if renew is not None and renew not in page["led"]:
            raise web.HTTPError(
                404, f"renew: you lead no project {renew!r} (only its pi or a manager asks for a renewal)"
            )
        if renew is not None:
            page["calls"] = [row for row in page["calls"] if not row["startup"]]
        html = await self.render_template("hpchub_apply.html", renew=renew, **page)
        self.finish(html)


class ProposalFormMixin(AllocationPageHandler):
    """Renders the form (with an error under its field) and takes its posts."""

    async def render_form(self, *, call: CallInfo, info: ProposalInfo | None, kind: ProposalKind,
                          values: dict[str, str], error: LedgerInputError | None = None, note: str = "",
                          ledger: Ledger, actor: Actor) -> None:  # fmt: skip
        field = error.field if error else None
        general = error.message if error and field not in (*views.PROPOSAL_FIELDS, "attachment") else None
        history = views.history_rows(info, False) if info else []
        reviews = None
        if info is not None:
            found = service.reviews_for(ledger, info, View.APPLICANT, actor, call)
            reviews = views.review_rows(found, call.spec.criteria, False) if found else None
        if error is not None:
            self.set_status(400)
        html = await self.render_template(
            "hpchub_proposal_form.html", call=call, call_row=views.call_row(call, 0, self.today(ledger)), info=info,
            kind=kind.value, values=values, error=error, error_field=field, general_error=general, note=note,
            fields_of_science=views.fields_of_science(), history=history, reviews=reviews,
            decision=views.decision_message(info) if info else None,
            attachments_enabled=bool(self.allocation_settings.attachment_dir),
        )  # fmt: skip
        self.finish(html)

    async def render_read_only(self, ledger: Ledger, actor: Actor, info: ProposalInfo, view: View, call: CallInfo,
                               *, award_failed: str = "") -> None:  # fmt: skip
        """The proposal read-only: history, the decision's message, the reviews ``view`` may read."""
        found = await self.run(service.reviews_for, ledger, info, view, actor, call)
        html = await self.render_template(
            "hpchub_proposal.html", info=info, row=views.proposal_row(info), view=view.value,
            own=info.applicant == actor.user, call=call, history=views.history_rows(info, view is View.MANAGER),
            decision=views.decision_message(info), fos=rules.FIELDS_OF_SCIENCE.get(info.content.field_of_science, ""),
            reviews=views.review_rows(found, call.spec.criteria, view is View.MANAGER) if found else None,
            award_failed=award_failed, requested=views.hours(info.content.gpu_hours_mgs),
        )  # fmt: skip
        self.finish(html)

    def _attachment(self) -> tuple[bytes, str] | None:
        files = self.request.files.get("attachment") or []
        if not files or not files[0].body:
            return None
        return files[0].body, attachments.safe_filename(files[0].filename)

    async def take_post(self, ledger: Ledger, actor: Actor, call: CallInfo, info: ProposalInfo | None,
                        kind: ProposalKind) -> None:  # fmt: skip
        """Save or submit: every check before anything is stored; then the page of the proposal."""
        action = self.get_body_argument("action", "save")
        if action not in ("save", "submit"):
            raise web.HTTPError(400, f"action: save or submit, got {action!r}")
        typed = views.typed_fields(self.request.body_arguments, views.PROPOSAL_FIELDS)
        if actor.principal is None:
            raise web.HTTPError(403, "your login's institution is not known yet: log out and log in again")
        form = dict(call=call, info=info, kind=kind, values=typed, ledger=ledger, actor=actor)
        upload = self._attachment()
        try:
            rules.check_content(typed, call=call.spec, applicant_principal=actor.principal, kind=kind,
                                complete=action == "submit")  # fmt: skip
            if upload is not None:
                attachments.check_pdf(upload[0])
                digest = attachments.store(self.allocation_settings.attachment_dir, upload[0])
                upload = (digest, upload[1])
            saved = await self.attempt(
                ledger.save_proposal, call=call.name, applicant=actor.user, applicant_principal=actor.principal,
                fields=typed, kind=kind, proposal_id=info.id if info else None, attachment=upload,
            )  # fmt: skip
        except LedgerInputError as exc:
            await self.render_form(error=exc, **form)
            return
        except OSError as exc:
            self.log.error("hpchub allocation pages: storing an attachment: %s", exc)
            await self.render_form(error=LedgerInputError("attachment", "the file could not be stored; try again"),
                                   **form)  # fmt: skip
            return
        if action == "submit":
            try:
                await award.submit(ledger, saved.id, self.award_context(ledger), applicant=actor.user)
            except award.AwardFailed as exc:
                # submitted, not awarded: the managers can award it; the page says why
                info = await self.run(ledger.proposal, saved.id)
                await self.render_read_only(ledger, actor, info, View.APPLICANT, call,
                                            award_failed=f"{exc.step}: {exc.message}")  # fmt: skip
                return
            except LedgerInputError as exc:
                note = f"Saved as draft #{saved.id}; it was not submitted." if info is None else ""
                await self.render_form(error=exc, note=note, **{**form, "info": saved})
                return
        self.redirect(f"{self.hub.base_url}hpchub/proposals/{saved.id}")


class NewProposalHandler(ProposalFormMixin):
    async def _start(self) -> tuple[Ledger, Actor, CallInfo, ProposalKind, str]:
        ledger = await self.ledger()
        actor = await self.applicant(ledger)
        call = await self.run(ledger.call, self.get_argument("call", ""))
        renew = self.get_argument("renew", "")
        if renew:
            if renew not in await self.run(_led_projects, ledger, actor.user):
                raise web.HTTPError(404, f"renew: you lead no project {renew!r}")
            return ledger, actor, call, ProposalKind.RENEWAL, renew
        return ledger, actor, call, ProposalKind.NEW, ""

    @web.authenticated
    async def get(self) -> None:
        ledger, actor, call, kind, project = await self._start()
        if not call.is_open(self.today(ledger)):
            raise web.HTTPError(404, f"call: {call.name} is not open")
        await self.render_form(call=call, info=None, kind=kind, values=views.form_values(None, project_name=project),
                               ledger=ledger, actor=actor)  # fmt: skip

    @web.authenticated
    async def post(self) -> None:
        ledger, actor, call, kind, project = await self._start()
        if kind is ProposalKind.RENEWAL:
            self.request.body_arguments["project_name"] = [project.encode()]
        await self.take_post(ledger, actor, call, None, kind)


class ProposalHandler(ProposalFormMixin):
    async def _view(self, proposal_id: str) -> tuple[Ledger, Actor, ProposalInfo, View, CallInfo]:
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        info, view = await self.run(service.view_of, ledger, actor, proposal_id, self.allocation_settings)
        call = await self.run(ledger.call, info.call)
        return ledger, actor, info, view, call

    @web.authenticated
    async def get(self, proposal_id: str) -> None:
        ledger, actor, info, view, call = await self._view(proposal_id)
        own = info.applicant == actor.user
        if own and info.state.editable:
            await self.render_form(call=call, info=info, kind=info.kind, values=views.form_values(info),
                                   ledger=ledger, actor=actor)  # fmt: skip
            return
        await self.render_read_only(ledger, actor, info, view, call)

    @web.authenticated
    async def post(self, proposal_id: str) -> None:
        ledger, actor, info, _view, call = await self._view(proposal_id)
        if info.applicant != actor.user:
            raise web.HTTPError(404, f"proposal: no proposal #{proposal_id} of yours")
        actor = await self.applicant(ledger)
        if self.get_body_argument("action", "") == "withdraw":
            await self.run(ledger.withdraw_proposal, info.id, applicant=actor.user)
            self.redirect(f"{self.hub.base_url}hpchub/proposals/{info.id}")
            return
        if not info.state.editable:
            raise web.HTTPError(400, f"proposal: #{info.id} is {info.state.value}: only a draft or a returned "
                                     "proposal can be edited")  # fmt: skip
        await self.take_post(ledger, actor, call, info, info.kind)


class AttachmentHandler(AllocationPageHandler):
    @web.authenticated
    async def get(self, proposal_id: str) -> None:
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        info, _view = await self.run(service.view_of, ledger, actor, proposal_id, self.allocation_settings)
        if not info.content.attachment_sha256:
            raise web.HTTPError(404, f"attachment: proposal #{info.id} has none")
        try:
            data = await self.run(attachments.read, self.allocation_settings.attachment_dir,
                                  info.content.attachment_sha256)  # fmt: skip
        except (FileNotFoundError, NotFound):
            raise web.HTTPError(404, "attachment: the file is missing from the store") from None
        self.set_header("Content-Type", "application/pdf")
        self.set_header(
            "Content-Disposition", f'attachment; filename="{info.content.attachment_name or "proposal.pdf"}"'
        )
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(data)


ROUTES = [
    (rf"{PAGES_PREFIX}/apply/?", ApplyHandler),
    (rf"{PAGES_PREFIX}/proposals/new/?", NewProposalHandler),
    (rf"{PAGES_PREFIX}/proposals/{_ID}/attachment", AttachmentHandler),
    (rf"{PAGES_PREFIX}/proposals/{_ID}/?", ProposalHandler),
]
