"""Unit tests for the environment catalogue (spawners/catalog.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spawners.catalog import (
    Catalogue,
    CatalogueError,
    Environment,
    fill_placeholders,
    load_catalogue,
    parse_catalogue,
)

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
VARIABLES = {"demo_venv": "/var/lib/hpchub-demo/envs/default", "image_dir": "/srv/images"}

VENV_ENTRY = """
[[environment]]
id = "default"
name = "Default"
description = "JupyterLab"
kind = "venv"
path = "{demo_venv}"
gpu = true
default = true
"""

APPTAINER_ENTRY = """
[[environment]]
id = "torch-2"
name = "PyTorch"
description = "PyTorch image"
kind = "apptainer"
image = "{image_dir}/torch.sif"
gpu = true
default = false
"""


def test_shipped_catalogue_loads() -> None:
    catalogue = load_catalogue(
        REPO_ROOT / "images" / "catalog.toml", {"demo_venv": "/opt/demo/venv", "pytorch_venv": "", "pytorch_image": ""}
    )
    assert catalogue.ids() == ("default", "pytorch", "pytorch-apptainer")
    entry = catalogue.default
    assert entry == Environment(
        id="default",
        name="Default (JupyterLab, Python 3.11)",
        description=entry.description,
        kind="venv",
        path="/opt/demo/venv",
        image=None,
        gpu=True,
        default=True,
    )
    assert "jupyterlab" in entry.description.lower() and "ipywidgets" in entry.description.lower()


def test_two_entries_keep_order_and_fill_placeholders() -> None:
    catalogue = parse_catalogue(VENV_ENTRY + APPTAINER_ENTRY, VARIABLES)
    assert catalogue.ids() == ("default", "torch-2")
    assert catalogue.default.id == "default"
    torch = catalogue.get("torch-2")
    assert torch is not None and torch.image == "/srv/images/torch.sif" and torch.path is None
    assert catalogue.get("nope") is None
    assert "torch-2" in catalogue and "nope" not in catalogue and len(catalogue) == 2
    assert [entry.id for entry in catalogue] == ["default", "torch-2"]


def test_load_missing_file_is_a_catalogue_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "absent.toml", VARIABLES)


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(VENV_ENTRY, encoding="utf-8")
    assert load_catalogue(path, VARIABLES).default.path == VARIABLES["demo_venv"]


def _replace(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


BAD_CATALOGUES = [
    pytest.param("", "no \\[\\[environment\\]\\]", id="empty"),
    pytest.param("x = 1\n" + VENV_ENTRY, "unknown top-level key", id="unknown-top-level"),
    pytest.param("[[environment]\n", "not valid TOML", id="bad-toml"),
    pytest.param(_replace(VENV_ENTRY, 'name = "Default"\n', ""), "'default' field name: missing", id="missing-name"),
    pytest.param(_replace(VENV_ENTRY, 'id = "default"\n', ""), "#1 field id", id="missing-id"),
    pytest.param(_replace(VENV_ENTRY, 'id = "default"', 'id = "Default"'), "field id: must be", id="uppercase-id"),
    pytest.param(_replace(VENV_ENTRY, 'id = "default"', 'id = "a b"'), "field id", id="space-in-id"),
    pytest.param(_replace(VENV_ENTRY, 'id = "default"', 'id = "' + "a" * 41 + '"'), "field id", id="long-id"),
    pytest.param(
        _replace(VENV_ENTRY, 'kind = "venv"', 'kind = "docker"'),
        "field kind: must be one of venv, apptainer",
        id="bad-kind",
    ),
    pytest.param(
        _replace(VENV_ENTRY, 'path = "{demo_venv}"', 'path = "envs/default"'),
        "field path: must be an absolute path",
        id="relative-path",
    ),
    pytest.param(
        _replace(VENV_ENTRY, 'path = "{demo_venv}"', 'path = "{nope}/x"'),
        "field path: unknown placeholder \\{nope\\}",
        id="unknown-placeholder",
    ),
    pytest.param(
        _replace(VENV_ENTRY, 'path = "{demo_venv}"', 'path = "{demo_venv!r}"'),
        "plain names",
        id="placeholder-conversion",
    ),
    pytest.param(
        _replace(VENV_ENTRY, 'path = "{demo_venv}"', 'path = "{demo_venv"'),
        "bad placeholder syntax",
        id="unbalanced-brace",
    ),
    pytest.param(_replace(VENV_ENTRY, 'path = "{demo_venv}"\n', ""), "field path: missing", id="venv-without-path"),
    pytest.param(
        _replace(VENV_ENTRY, 'path = "{demo_venv}"', 'image = "/x.sif"'),
        "field image: not used by kind venv",
        id="venv-with-image",
    ),
    pytest.param(
        _replace(APPTAINER_ENTRY, 'image = "{image_dir}/torch.sif"', 'image = "torch.sif"').replace(
            "default = false", "default = true"
        ),
        "field image: must be an absolute path",
        id="apptainer-relative-image",
    ),
    pytest.param(
        _replace(VENV_ENTRY, "gpu = true", 'gpu = "yes"'), "field gpu: must be true or false", id="gpu-not-bool"
    ),
    pytest.param(
        _replace(VENV_ENTRY, "default = true", "default = 1"),
        "field default: must be true or false",
        id="default-not-bool",
    ),
    pytest.param(
        _replace(VENV_ENTRY, "gpu = true", "gpu = true\ncolour = 'red'"), "field colour: unknown key", id="unknown-key"
    ),
    pytest.param(
        _replace(VENV_ENTRY, 'name = "Default"', 'name = ""'), "field name: must be a non-empty string", id="empty-name"
    ),
    pytest.param(
        VENV_ENTRY + VENV_ENTRY.replace("default = true", "default = false"),
        "'default' field id: duplicate id",
        id="duplicate-id",
    ),
    pytest.param(
        _replace(VENV_ENTRY, "default = true", "default = false"),
        "field default: exactly one .* found none",
        id="no-default",
    ),
    pytest.param(
        VENV_ENTRY + APPTAINER_ENTRY.replace("default = false", "default = true"),
        "field default: exactly one .* found default, torch-2",
        id="two-defaults",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_CATALOGUES)
def test_bad_catalogue_names_entry_and_field(text: str, message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        parse_catalogue(text, VARIABLES)


def test_apptainer_entry_with_path_is_refused() -> None:
    text = VENV_ENTRY + _replace(APPTAINER_ENTRY, 'image = "{image_dir}/torch.sif"', 'path = "/srv/torch"')
    with pytest.raises(CatalogueError, match="'torch-2' field path: not used by kind apptainer"):
        parse_catalogue(text, VARIABLES)


def test_fill_placeholders_keeps_escaped_braces() -> None:
    assert (
        fill_placeholders("/a/{{literal}}/{demo_venv}", VARIABLES) == "/a/{literal}//var/lib/hpchub-demo/envs/default"
    )


def test_catalogue_constructor_checks_defaults() -> None:
    entry = Environment("a", "A", "a", "venv", "/a", None, False, False)
    with pytest.raises(CatalogueError, match="exactly one"):
        Catalogue([entry])


def test_shipped_pytorch_entries_are_unavailable_until_the_site_sets_them() -> None:
    unset = {"demo_venv": "/opt/demo/venv", "pytorch_venv": "", "pytorch_image": ""}
    catalogue = load_catalogue(REPO_ROOT / "images" / "catalog.toml", unset)
    torch, image = catalogue.get("pytorch"), catalogue.get("pytorch-apptainer")
    assert torch is not None and image is not None
    assert not torch.available and "catalogue_variables entry 'pytorch_venv' is not set" in torch.unavailable_reason
    assert image.kind == "apptainer" and not image.available and torch.gpu and image.gpu
    built = load_catalogue(
        REPO_ROOT / "images" / "catalog.toml",
        {**unset, "pytorch_venv": "/sw/pytorch", "pytorch_image": "/sw/pytorch.sif"},
    )
    assert built.get("pytorch").path == "/sw/pytorch" and built.get("pytorch").available
    assert built.get("pytorch-apptainer").image == "/sw/pytorch.sif"


def test_shipped_images_have_pinned_requirements_and_apptainer_definitions() -> None:
    for image in ("default", "pytorch"):
        lines = [
            line
            for line in (REPO_ROOT / "images" / image / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        assert lines and all("==" in line for line in lines), image
        definition = (REPO_ROOT / "images" / image / "Apptainer.def").read_text()
        assert "Bootstrap:" in definition and f"images/{image}/requirements.txt" in definition


def test_default_entry_must_be_available() -> None:
    text = VENV_ENTRY.replace('path = "{demo_venv}"', 'path = "{unset_venv}"')
    with pytest.raises(CatalogueError, match="the default environment must be available"):
        parse_catalogue(text, {**VARIABLES, "unset_venv": ""})


def test_a_site_that_sets_only_demo_venv_still_loads_the_shipped_catalogue() -> None:
    catalogue = load_catalogue(REPO_ROOT / "images" / "catalog.toml", {"demo_venv": "/opt/demo/venv"})
    assert catalogue.default.path == "/opt/demo/venv"
    assert (
        not catalogue.get("pytorch").available
        and "catalogue_variables entry 'pytorch_venv' is not set" in catalogue.get("pytorch").unavailable_reason
    )


def test_unknown_placeholder_in_the_default_entry_is_still_an_error() -> None:
    with pytest.raises(CatalogueError, match="unknown placeholder \\{nope\\}"):
        parse_catalogue(VENV_ENTRY.replace("{demo_venv}", "{nope}"), VARIABLES)
