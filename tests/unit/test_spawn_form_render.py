"""The spawn form's HTML (spawners.slurm.form): disabled choices with reasons, errors, kept choices."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from spawners.catalog import Catalogue, Environment
from spawners.slurm.cluster_parsers import parse_sinfo
from spawners.slurm.form import (
    CourseLimits,
    FormError,
    FormPreview,
    ProjectBudget,
    form_choices,
    render_options_form,
)

pytestmark = pytest.mark.unit

DEMO = parse_sinfo(
    "gpu*|8:00:00|gpu:h200:4|gpu[01-02]\n"
    "gpu*|8:00:00|gpu:a100:4|gpu03\n"
    "debug|30:00|gpu:a100:4|gpu03\n"
    "cpu|4:00:00|(null)|cpu01\n"
)
SMALL = parse_sinfo("big*|8:00:00|gpu:h200:4|n1\nsmall|2:00:00|gpu:a100:2|n2\n")
CATALOGUE = Catalogue([
    Environment("default", "Default", "JupyterLab", "venv", "/opt/x", None, True, True),
    Environment("torch", "PyTorch", "CUDA", "venv", "/opt/y", None, True, False),
])  # fmt: skip
BUDGETS = {
    "vision-lab": ProjectBudget("96.0 GPU-h left; your cap: 16.0 left"),
    "tiny-lab": ProjectBudget("0.1 GPU-h left", "cannot pay for the smallest session, 1 GPU for 0.25 h = 0.125 GPU-h"),
}


class _Form(HTMLParser):
    """Selects (attributes, options) and elements by id."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.selects: dict[str, dict] = {}
        self.by_id: dict[str, dict] = {}
        self._select: str | None = None
        self._option: dict | None = None
        self._open: list[tuple[str, str | None]] = []  # (tag, id) of the open elements
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.by_id[attributes["id"]] = {"tag": tag, "attrs": attributes, "text": ""}
        self._open.append((tag, attributes.get("id")))
        if tag == "select":
            self._select = attributes["name"]
            self.selects[self._select] = {"attrs": attributes, "options": []}
        elif tag == "option" and self._select:
            self._option = {"value": attributes.get("value"), "selected": "selected" in attributes,
                            "disabled": "disabled" in attributes, "label": ""}  # fmt: skip
            self.selects[self._select]["options"].append(self._option)

    def handle_endtag(self, tag):
        while self._open and self._open.pop()[0] != tag:
            pass
        if tag == "select":
            self._select = None
        if tag == "option":
            self._option = None

    def handle_data(self, data):
        if self._option is not None:
            self._option["label"] += data
        for _tag, element in self._open:
            if element is not None:
                self.by_id[element]["text"] += data

    def selected(self, name: str) -> str:
        [value] = [o["value"] for o in self.selects[name]["options"] if o["selected"]]
        return value

    def disabled(self, name: str) -> dict[str, str]:
        return {o["value"]: o["label"] for o in self.selects[name]["options"] if o["disabled"]}


def _render(previous=None, cluster=DEMO, projects=("vision-lab", "tiny-lab"), **kwargs) -> _Form:
    return _Form(render_options_form(cluster, list(projects), CATALOGUE, previous or {}, BUDGETS, **kwargs))


@pytest.mark.parametrize(
    ("partition", "disabled_types"),
    [
        pytest.param("gpu", {"": "none (CPU only) (partition gpu has GPUs)"}, id="gpu-has-both"),
        pytest.param(
            "debug",
            {"": "none (CPU only) (partition debug has GPUs)", "h200": "h200 (not in partition debug)"},
            id="debug-a100-only",
        ),
        pytest.param(
            "cpu", {"a100": "a100 (not in partition cpu)", "h200": "h200 (not in partition cpu)"}, id="cpu-none"
        ),
    ],
)
def test_gpu_types_not_in_the_partition_are_disabled_with_the_reason(partition, disabled_types) -> None:
    form = _render({"partition": partition})
    assert form.disabled("gpu_type") == disabled_types
    assert form.selected("partition") == partition


@pytest.mark.parametrize(
    ("previous", "disabled_gpus", "selected"),
    [
        pytest.param(
            {"partition": "small", "gpu_type": "a100", "gpus": "4"},
            {
                "0": "0 (only on a partition without GPUs)",
                "3": "3 (a small node has 2 a100)",
                "4": "4 (a small node has 2 a100)",
            },
            "2",
            id="more-than-the-node-has-moves-down",
        ),
        pytest.param(
            {"partition": "big", "gpu_type": "h200", "gpus": "3"},
            {"0": "0 (only on a partition without GPUs)"},
            "3",
            id="big-node-all-allowed",
        ),
    ],
)
def test_gpu_counts_above_the_nodes_count_are_disabled(previous, disabled_gpus, selected) -> None:
    form = _render(previous, cluster=SMALL)
    assert form.disabled("gpus") == disabled_gpus
    assert form.selected("gpus") == selected


def test_cpu_partition_allows_only_zero_gpus() -> None:
    form = _render({"partition": "cpu"})
    assert set(form.disabled("gpus")) == {"1", "2", "3", "4"}
    assert form.disabled("gpus")["1"] == "1 (partition cpu has no GPUs)"
    assert (form.selected("gpus"), form.selected("gpu_type")) == ("0", "")


@pytest.mark.parametrize(
    ("partition", "hours", "first_disabled", "selected"),
    [
        pytest.param("debug", "1", "0.75 h (over the 0.5 h MaxTime of debug)", "0.5", id="debug-30-min"),
        pytest.param("cpu", "6", "4.25 h (over the 4 h MaxTime of cpu)", "4", id="cpu-4-h"),
        pytest.param("gpu", "8", None, "8", id="gpu-8-h-all-allowed"),
    ],
)
def test_hours_above_maxtime_are_disabled(partition, hours, first_disabled, selected) -> None:
    form = _render({"partition": partition, "hours": hours})
    disabled = list(form.disabled("hours").values())
    assert (disabled[0] if disabled else None) == first_disabled
    assert form.selected("hours") == selected
    assert [o["value"] for o in form.selects["hours"]["options"]][:5] == ["0.25", "0.5", "0.75", "1", "1.25"]


def test_projects_show_what_is_left_and_one_that_cannot_pay_is_disabled() -> None:
    form = _render()
    options = {o["value"]: o for o in form.selects["project"]["options"]}
    assert options["vision-lab"]["label"] == "vision-lab: 96.0 GPU-h left; your cap: 16.0 left"
    assert options["tiny-lab"]["disabled"]
    assert options["tiny-lab"]["label"] == (
        "tiny-lab: 0.1 GPU-h left (cannot pay for the smallest session, 1 GPU for 0.25 h = 0.125 GPU-h)"
    )
    assert form.selected("project") == "vision-lab"


def test_a_project_that_cannot_pay_is_not_preselected() -> None:
    assert form_choices(DEMO, ["tiny-lab", "vision-lab"], CATALOGUE, {"project": "tiny-lab"}, BUDGETS).project == (
        "vision-lab"
    )
    assert form_choices(DEMO, ["tiny-lab"], CATALOGUE, {"project": "tiny-lab"}, BUDGETS).project == "tiny-lab"


@pytest.mark.parametrize(
    ("error_field", "message"),
    [
        pytest.param("gpus", "gpus: must be a whole number from 1 to 4; got '9'", id="gpus"),
        pytest.param("hours", "hours: must be a multiple of 0.25 from 0.25 to 8; got '0.3'", id="hours"),
        pytest.param("project", "project: 'x' is not one of your projects", id="project"),
    ],
)
def test_an_error_is_shown_under_its_field_and_described_by_it(error_field, message) -> None:
    form = _render({"project": "vision-lab", "gpu_type": "h200", "gpus": "2", "hours": "3"},
                   error=FormError(error_field, message))  # fmt: skip
    attrs = form.selects[error_field]["attrs"]
    assert attrs["aria-invalid"] == "true" and "is-invalid" in attrs["class"]
    assert attrs["aria-describedby"].split() == [f"hpchub-{error_field}-hint", f"hpchub-{error_field}-error"]
    assert form.by_id[f"hpchub-{error_field}-error"]["text"] == message
    others = [name for name in form.selects if name != error_field]
    assert all("aria-invalid" not in form.selects[name]["attrs"] for name in others)


def test_a_refused_post_keeps_every_choice_and_shows_the_bad_value_as_sent() -> None:
    posted = {"project": "vision-lab", "partition": "gpu", "gpu_type": "h200", "gpus": "2", "hours": "0.3",
              "environment": "torch"}  # fmt: skip
    form = _render(posted, error=FormError("hours", "hours: not a quarter"))
    assert {name: form.selected(name) for name in posted} == posted
    sent = next(o for o in form.selects["hours"]["options"] if o["value"] == "0.3")
    assert sent["label"] == "0.3 h (as sent; not allowed)" and not sent["disabled"]


def test_a_budget_refusal_is_shown_by_gpus_and_hours() -> None:
    form = _render({"gpu_type": "h200", "gpus": "4", "hours": "8"},
                   error=FormError("budget", "bob's cap in vision-lab has 16.0 GPU-h left"))  # fmt: skip
    assert "bob's cap in vision-lab has 16.0 GPU-h left" in form.by_id["hpchub-budget-error"]["text"]
    for name in ("gpus", "hours"):
        assert "hpchub-budget-error" in form.selects[name]["attrs"]["aria-describedby"].split()
    assert (form.selected("gpus"), form.selected("hours")) == ("4", "8")


def test_values_are_escaped() -> None:
    text = render_options_form(DEMO, ["vision-lab"], CATALOGUE, {"hours": '"><script>alert(1)</script>'}, BUDGETS,
                               error=FormError("hours", "<b>bad</b>"))  # fmt: skip
    assert "<script>alert(1)" not in text and "<b>bad</b>" not in text
    assert "&lt;b&gt;bad&lt;/b&gt;" in text


def test_every_select_is_labelled_and_has_a_hint() -> None:
    form = _render()
    for name, select in form.selects.items():
        assert select["attrs"]["id"] == f"hpchub-{name}"
        assert f"hpchub-{name}-hint" in select["attrs"]["aria-describedby"]
    text = render_options_form(DEMO, ["vision-lab"], CATALOGUE, {}, BUDGETS)
    for name in ("project", "partition", "gpu_type", "gpus", "hours", "environment"):
        assert f'<label for="hpchub-{name}"' in text


ALLOWED = {"allowed": True, "summary": "This reserves up to 1.0 GPU-h (1 x h200 x 1 h). vision-lab has 95.0 left.",
           "left_now": "Left now, before this session: vision-lab 96.0 GPU-h.", "message": "", "offers": [],
           "offer_text": ""}  # fmt: skip
REFUSED = {"allowed": False, "summary": "", "left_now": "Left now, before this session: tiny-lab 0.25 GPU-h.",
           "message": "tiny-lab has 0.25 GPU-h left; this request needs 1.0 (1 x h200 x 1 h). Ask for fewer GPUs or hours.",
           "offer_text": "You can afford 1 x h200 for 0.25 h or 1 x a100 for 0.5 h.",
           "offers": [{"gpu_type": "h200", "gpus": 1, "hours": 0.25, "text": "1 x h200 for 0.25 h"},
                      {"gpu_type": "a100", "gpus": 1, "hours": 0.5, "text": "1 x a100 for 0.5 h"}]}  # fmt: skip


@pytest.mark.parametrize(
    ("preview", "texts"),
    [
        pytest.param(
            FormPreview(ALLOWED),
            {"summary": ALLOWED["summary"], "refusal": "", "offers": "", "left-now": ALLOWED["left_now"]},
            id="allowed",
        ),
        pytest.param(
            FormPreview(REFUSED),
            {
                "summary": "",
                "refusal": REFUSED["message"],
                "offers": REFUSED["offer_text"],
                "left-now": REFUSED["left_now"],
            },
            id="refused-with-offers",
        ),
        pytest.param(
            FormPreview(error="hours: too long"),
            {"summary": "", "refusal": "hours: too long", "offers": ""},
            id="preview-error",
        ),
    ],
)
def test_the_server_renders_the_preview_of_the_initial_choices(preview, texts) -> None:
    form = _render(preview=preview, preview_url="/hub/api/hpchub/v1/preview")
    for part, text in texts.items():
        assert form.by_id[f"hpchub-preview-{part}"]["text"].strip() == text
    assert form.by_id["hpchub-preview"]["attrs"]["aria-live"] == "polite"
    assert form.by_id["hpchub-spawn-form"]["attrs"]["data-preview-url"] == "/hub/api/hpchub/v1/preview"


def test_offer_buttons_carry_the_offer() -> None:
    text = render_options_form(DEMO, ["tiny-lab"], CATALOGUE, {}, {}, preview=FormPreview(REFUSED))
    assert ('data-gpu-type="a100" data-gpus="1" data-hours="0.5">Use 1 x a100 for 0.5 h</button>') in text
    assert 'type="button"' in text  # an offer fills the form; it never submits it


def test_choices_default_to_the_default_partition_and_its_first_type() -> None:
    chosen = form_choices(DEMO, ["vision-lab"], CATALOGUE, {})
    assert chosen.to_options() == {"project": "vision-lab", "partition": "gpu", "gpu_type": "a100", "gpus": "1",
                                   "hours": "1", "environment": "default"}  # fmt: skip


def test_stored_options_are_shown_again() -> None:
    stored = {"project": "vision-lab", "partition": "gpu", "gpu_type": "h200", "gpus": 2, "hours": 1.5,
              "environment": "default"}  # fmt: skip
    assert form_choices(DEMO, ["vision-lab"], CATALOGUE, stored).to_options() == {**stored, "gpus": "2", "hours": "1.5"}


def test_no_project_says_so() -> None:
    assert "You have no project" in render_options_form(DEMO, [], CATALOGUE, {})


def test_a_students_course_rules_disable_choices_with_the_rule() -> None:
    budgets = {**BUDGETS, "cs101": ProjectBudget("50.0 GPU-h left; your cap: 5.0 left",
                                                 course=CourseLimits(("a100",), 1, 8))}  # fmt: skip
    form = _Form(render_options_form(DEMO, ["cs101", "vision-lab"], CATALOGUE,
                                     {"project": "cs101", "gpu_type": "h200", "gpus": "2", "hours": "3"}, budgets))  # fmt: skip
    assert form.disabled("gpu_type")["h200"] == "h200 (course rule: a100 only)"
    assert form.disabled("gpus")["2"] == "2 (course rule: at most 1)"
    assert form.disabled("hours")["2.25"] == "2.25 h (course rule: at most 2 h)"
    assert (form.selected("gpu_type"), form.selected("gpus"), form.selected("hours")) == ("a100", "1", "2")
    # the same user's research project is not bound by the course
    other = _Form(render_options_form(DEMO, ["cs101", "vision-lab"], CATALOGUE,
                                      {"project": "vision-lab", "gpu_type": "h200", "gpus": "2"}, budgets))  # fmt: skip
    assert "h200" not in other.disabled("gpu_type") and other.selected("gpus") == "2"


# --- the template, its JSON block and its script ---------------------------------------------------------


def _form_data(text: str) -> dict:
    import json  # noqa: PLC0415

    return json.loads(
        text.split('<script type="application/json" id="hpchub-form-data">', 1)[1].split("</script>", 1)[0]
    )


def test_the_script_receives_every_reason_from_the_server() -> None:
    budgets = {**BUDGETS, "cs101": ProjectBudget("50.0 GPU-h left", course=CourseLimits(("a100",), 1, 8))}
    data = _form_data(render_options_form(DEMO, ["cs101", "vision-lab"], CATALOGUE, {}, budgets))
    assert data["keys"] == ["project", "partition", "gpu_type", "gpus", "hours", "environment"]
    debug = data["reasons"]["vision-lab"]["debug"]
    assert debug["gpu_type"] == {"": "partition debug has GPUs", "a100": "", "h200": "not in partition debug"}
    assert debug["gpus"]["a100"]["4"] == "" and debug["gpus"]["a100"]["0"] == "only on a partition without GPUs"
    assert debug["hours"]["0.5"] == "" and debug["hours"]["0.75"] == "over the 0.5 h MaxTime of debug"
    assert data["reasons"]["vision-lab"]["cpu"]["gpus"][""] == {"0": "", **{str(n): "partition cpu has no GPUs"
                                                                            for n in range(1, 5)}}  # fmt: skip
    course = data["reasons"]["cs101"]["gpu"]
    assert (
        course["gpu_type"]["h200"] == "course rule: a100 only"
        and course["gpus"]["a100"]["2"] == "course rule: at most 1"
    )


def test_the_json_block_cannot_close_its_script() -> None:
    evil = Catalogue([Environment("default", "</script><b>", "x", "venv", "/opt/x", None, True, True)])
    text = render_options_form(DEMO, ["vision-lab"], evil, {}, {})
    assert "</script><b>" not in text


def test_the_script_is_a_static_file_that_applies_no_rule() -> None:
    from spawners.slurm.form import SCRIPT_NAME, template_dirs  # noqa: PLC0415

    script = (template_dirs()[0] / "static" / SCRIPT_NAME).read_text()
    for rule_word in ("MaxTime", "course rule", "has no GPUs", "max_quarters", "gpus_per_node"):
        assert rule_word not in script
    text = render_options_form(
        DEMO, ["vision-lab"], CATALOGUE, {}, BUDGETS, script_url="/hub/hpchub/static/spawn_form.js"
    )
    assert '<script src="/hub/hpchub/static/spawn_form.js" defer></script>' in text
    assert "function" not in text  # no script in the page itself


def test_a_sites_spawn_form_html_first_on_the_template_path_replaces_the_form(tmp_path) -> None:
    import asyncio  # noqa: PLC0415

    import jinja2  # noqa: PLC0415

    from spawners.slurm.form import form_model, render_form_async, template_dirs  # noqa: PLC0415

    (tmp_path / "spawn_form.html").write_text(
        '<div id="site-form">{% for f in form.fields %}<select name="{{ f.key }}">'
        '{% for o in f.options %}<option value="{{ o.value }}">{{ o.shown }}</option>{% endfor %}</select>'
        "{% endfor %}</div>"
    )
    model = form_model(DEMO, ["vision-lab"], CATALOGUE, {}, BUDGETS)
    # as JupyterHub builds its environment: the template paths in order, async rendering
    paths = [str(tmp_path), *map(str, template_dirs())]
    hub_env = jinja2.Environment(loader=jinja2.FileSystemLoader(paths), autoescape=True, enable_async=True)
    site = _Form(asyncio.run(render_form_async(model, hub_env)))
    assert "site-form" in site.by_id and set(site.selects) == {"project", "partition", "gpu_type", "gpus", "hours",
                                                                "environment"}  # fmt: skip
    default_env = jinja2.Environment(loader=jinja2.FileSystemLoader(paths[1:]), autoescape=True, enable_async=True)
    assert "hpchub-spawn-form" in _Form(asyncio.run(render_form_async(model, default_env))).by_id


def test_a_missing_cluster_account_is_a_notice_of_the_template() -> None:
    from spawners.slurm.form import FormModel, no_cluster_account_notice, render_form  # noqa: PLC0415

    text = render_form(FormModel(notice=no_cluster_account_notice("new<user")))
    assert 'id="hpchub-no-cluster-account"' in text and "<code>new&lt;user</code> does not exist yet" in text
    assert "hpchub-spawn-form" not in text
