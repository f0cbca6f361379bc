"""The background import of Great Expectations that a changed source starts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_warm_up_imports_gx_once_in_the_background():
    script = textwrap.dedent(
        """
        import sys
        import quality.suites as suites
        assert "great_expectations" not in sys.modules, "imported before the warm-up"
        suites.warm_up()
        assert "sqlalchemy.orm" in sys.modules, "SQLAlchemy is not imported before the thread"
        first = suites._warm_thread
        assert first is not None and first.daemon
        suites.warm_up()
        assert suites._warm_thread is first, "a second warm-up started another thread"
        first.join(120)
        assert not first.is_alive()
        import great_expectations.execution_engine.pandas_execution_engine as engine
        assert engine.HASH_THRESHOLD == 0, "the warm-up did not run the same set-up as _gx()"
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
