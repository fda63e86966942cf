"""The README: its generated sections match the code, its quick start is what CI runs, and it
covers every command."""

from __future__ import annotations

import re

import click

import pytest

from reconciler import docs
from reconciler.cli import cli
from tests.day2.helpers import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
MAIN_JOB = "python -m pip install -e . && reconciler demo"
TESTS = "python -m pip install -e '.[test]' && python -m pytest -q"


@pytest.mark.parametrize("name", sorted(docs.SECTIONS))
def test_generated_sections_match_the_code(name: str):
    body = docs.section(README, name)
    assert body is not None, f"README lacks the {name} markers"
    assert body == docs.SECTIONS[name](), f"README's {name} section is out of date: run python -m reconciler.docs"


def test_regenerating_is_a_no_op_and_check_mode_agrees(tmp_path):
    assert docs.regenerate(README) == README
    copy = tmp_path / "README.md"
    copy.write_text(README.replace("| `spec.region` |", "| `spec.regio` |"))
    examples = ["--examples", str(REPO / "manifests")]
    assert docs.main(["--readme", str(copy), "--check", *examples]) == 1
    assert docs.main(["--readme", str(copy), *examples]) == 0
    assert copy.read_text() == README


def test_the_reference_covers_every_model_field():
    from reconciler.manifest.model import CloudHsmSpec, DeletionSpec, KeyStoreSpec, ManagedKey, XksCredential, XksSpec

    body = docs.section(README, "manifest-reference")
    for prefix, model in [("spec", KeyStoreSpec), ("spec.xks", XksSpec), ("spec.xks.credential", XksCredential),
                          ("spec.cloudHsm", CloudHsmSpec), ("spec.keys[]", ManagedKey),
                          ("spec.deletion", DeletionSpec)]:
        for field in model.model_fields:
            assert f"| `{prefix}.{field}` |" in body


def test_the_troubleshooting_table_has_every_connection_error_code():
    from reconciler.aws.connection_errors import FIXES

    body = docs.section(README, "troubleshooting")
    assert [m for m in re.findall(r"^\| `([A-Z_]+)` \|", body, re.M)] == list(FIXES)


def test_quick_start_commands_are_byte_identical_and_ci_runs_the_test_command():
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    assert f"{MAIN_JOB}\n" in blocks
    assert f"{TESTS}\n" in blocks
    assert TESTS in (REPO / ".ci" / "run").read_text().splitlines()


def test_the_commands_table_lists_every_command():
    table = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `reconciler ([a-z-]+)", table, re.M))
    assert listed == set(cli.list_commands(click.Context(cli)))


def test_the_readme_covers_what_a_newcomer_needs():
    for heading in ("## Quick start", "What it is not", "## The lifecycle", "## Exit codes", "## Safety model",
                    "## Pointing at real AWS", "## Manifest reference", "## Troubleshooting", "## Adopting"):
        assert heading in README
    for fact in ("--allow-destroy", "cancel_key_deletion", "spec.account", "reconciler iam-policy", "docs/ci.md",
                 "AWS_PROFILE", "--endpoint-url", "--region"):
        assert fact in README


def test_the_examples_shipped_with_the_package_are_the_repositorys():
    """`reconciler demo` (from any directory) uses the packaged copy of manifests/."""
    assert docs.example_files(REPO / "manifests") == docs.example_files(docs.PACKAGED_EXAMPLES), \
        "reconciler/examples/manifests differs from manifests/: run python -m reconciler.docs"
    from reconciler.commands.demo import EXAMPLES

    assert EXAMPLES == docs.PACKAGED_EXAMPLES
