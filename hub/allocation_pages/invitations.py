"""An invitation's link: ``GET|POST /hub/hpchub/invitations/{token}``.

The page names the project and asks the invited person to join or decline; only the principal the
invitation was made for may answer it (the ledger compares it with the principal of the user's
recorded login), anyone else gets 404 as for a token that does not exist. Joining also happens
without the link, at the invited person's next login.
"""

from __future__ import annotations

from tornado import web

from hub.allocation_pages.base import PAGES_PREFIX, AllocationPageHandler
from hub.ledger.errors import NotFound

_TOKEN = r"([A-Za-z0-9_-]{10,100})"


class InvitationHandler(AllocationPageHandler):
    async def _principal(self, ledger) -> str:
        principal = await self.run(ledger.login_principal, self.current_user.name)
        if not principal:
            raise web.HTTPError(404, "no login of yours is recorded yet: log out and in again, then open the link")
        return principal

    @web.authenticated
    async def get(self, token: str) -> None:
        ledger = await self.ledger()
        principal = await self._principal(ledger)
        invitation = await self.run(ledger.invitation_for, token, principal)
        html = await self.render_template("hpchub_invitation.html", invitation=invitation, token=token, answered=None)
        self.finish(html)

    @web.authenticated
    async def post(self, token: str) -> None:
        ledger = await self.ledger()
        principal = await self._principal(ledger)
        invitation = await self.run(ledger.invitation_for, token, principal)
        accept = self.get_body_argument("answer", "") == "accept"
        try:
            joined = await self.run(ledger.answer_invitation, token, user=self.current_user.name, principal=principal,
                                    accept=accept)  # fmt: skip
        except NotFound:
            raise web.HTTPError(404, "unknown invitation, or it is for another login") from None
        answered = "accepted" if joined else ("declined" if not accept else "answered before")
        html = await self.render_template(
            "hpchub_invitation.html", invitation=invitation, token=token, answered=answered
        )
        self.finish(html)


ROUTES = [(rf"{PAGES_PREFIX}/invitations/{_TOKEN}", InvitationHandler)]
