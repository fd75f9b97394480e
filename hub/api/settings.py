"""``HPCHubAPI``: the ledger REST API's settings (``c.HPCHubAPI``)."""

from __future__ import annotations

from traitlets import Float, Integer, Unicode, Union, validate
from traitlets.config import Configurable

from hub.ledger import arithmetic as arith


class HPCHubAPI(Configurable):
    """Settings of the ledger REST API."""

    ta_cap_limit_gpu_hours = Union(
        [Unicode(), Float(), Integer()],
        default_value=None,
        allow_none=True,
        help="Highest cap (GPU-hours) a ta may raise a student's or member's cap to, in projects and in "
        "courses whose instructors set no TA extension limit of their own (hpchub course settings "
        "--ta-extension-limit, which wins). Default None: TAs may not change caps there. Example: 10.",
    ).tag(config=True)

    instructor_course_max_gpu_hours = Union(
        [Unicode(), Float(), Integer()],
        default_value=None,
        allow_none=True,
        help="Largest budget (GPU-hours) an instructor of a course may give a new course they create from the "
        "course page or POST /courses (they become its instructor). Default None: only the portal's admins "
        "create courses. Example: 500.",
    ).tag(config=True)

    @validate("instructor_course_max_gpu_hours")
    def _check_instructor_max(self, proposal):
        value = proposal["value"]
        if value is not None:
            arith.gpu_hours_to_mgs(value, "HPCHubAPI.instructor_course_max_gpu_hours")
        return value

    @property
    def instructor_course_max_mgs(self) -> int | None:
        value = self.instructor_course_max_gpu_hours
        return None if value is None else arith.gpu_hours_to_mgs(value, "HPCHubAPI.instructor_course_max_gpu_hours")

    @validate("ta_cap_limit_gpu_hours")
    def _check_ta_limit(self, proposal):
        value = proposal["value"]
        if value is not None:
            arith.gpu_hours_to_mgs(value, "HPCHubAPI.ta_cap_limit_gpu_hours")
        return value

    @property
    def ta_cap_limit_mgs(self) -> int | None:
        value = self.ta_cap_limit_gpu_hours
        return None if value is None else arith.gpu_hours_to_mgs(value, "HPCHubAPI.ta_cap_limit_gpu_hours")
