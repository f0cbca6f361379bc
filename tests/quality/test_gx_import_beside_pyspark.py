"""Great Expectations imports pyspark's test helpers when pyspark is installed (the `spark`
extra); without pyspark's connect dependencies those helpers end a process whose main module
has no file (`python -c`, some subprocesses) with "Skipping doctests" and status 0, so a
validation step vanished without an error. The extra installs `pyspark[connect]`."""

import subprocess
import sys


def test_importing_great_expectations_does_not_end_the_process():
    out = subprocess.run(
        [sys.executable, "-c", "import great_expectations; print('still here')"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "still here" in out.stdout, out.stderr[-500:]
