"""Every ``drunet`` command starts without importing segmentation-models-pytorch (with timm and
torchvision, ~1.3 s of each start-up): it is imported when an smp model is first built."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import drunet.cli.main
from drunet.models import create_model
create_model("drunet", in_channels=1, out_channels=1)
print("segmentation_models_pytorch" in sys.modules)
"""


def test_the_cli_and_a_drunet_model_do_not_import_smp() -> None:
    # smp models themselves are built in tests/models/test_registry.py (the import then works).
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
