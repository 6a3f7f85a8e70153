"""The catalogs travel with the package: the wheel holds every language's ``.po`` file, and
what is installed (here: editable) translates without a build step or ``.mo`` files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from aggregator import i18n

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_carries_every_catalog(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [wheel] = tmp_path.glob("aggregator-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "aggregator/locale/messages.pot" in names
    assert "aggregator/i18n.py" in names
    for lang in i18n.UI_LANGUAGES:
        if lang != i18n.SOURCE_LANGUAGE:
            assert f"aggregator/locale/{lang}/LC_MESSAGES/messages.po" in names, lang


def test_a_fresh_interpreter_translates_from_the_installed_package() -> None:
    script = "from aggregator.i18n import translator; print(translator('uk').gettext('Sources:'))"
    out = subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        capture_output=True,
        text=True,
        cwd="/",
        timeout=120,
    ).stdout
    assert out.strip() == "Джерела:"
