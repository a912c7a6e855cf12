"""Long fuzzing run: the properties of test_fuzz.py and test_cli_property.py with many more
examples (not collected).

    python tests/robustness/fuzz_long.py --examples 5000
    python tests/robustness/fuzz_long.py --examples 2000 --only mask --seed 3
    python tests/robustness/fuzz_long.py --only any_ --cli-examples 300   # the CLI properties

The CLI properties (whole ``drunet`` commands fed generated files; each example trains, predicts
or exports in-process) take ``--cli-examples`` each (default 300); they share one tiny trained
run, made first in a temporary folder.

Decoded images are capped at 2**24 pixels (``DRUNET_MAX_IMAGE_PIXELS``; set it to override) so
thousands of corrupt headers cannot claim gigabytes. Prints, per property, how many examples ran
and how they ended (decoded / DataError …); a failing property prints hypothesis's shrunk
falsifying example and traceback, the run goes on with the next one, and the exit status is 1.
Failures are saved in ``.hypothesis/`` so the bounded suite (``pytest
tests/robustness/test_fuzz.py``) replays them too.
"""

from __future__ import annotations

import argparse
import atexit
import faulthandler
import functools
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere
# Thousands of corrupt headers declare huge sizes; a truncated JPEG still decodes (gray fill),
# so cap decoded images at 2**24 pixels (OpenCV reads the limit once, before drunet loads it).
os.environ.setdefault("DRUNET_MAX_IMAGE_PIXELS", str(2**24))


def properties() -> dict[str, tuple[Callable[..., None], dict, Counter[str], bool]]:
    """``{name: (test, strategies, outcomes, is_cli)}`` of both property modules."""
    from tests.robustness import test_cli_property as cli
    from tests.robustness import test_fuzz as fuzz

    found = {name: (*found, fuzz.OUTCOMES, False) for name, found in fuzz.PROPERTIES.items()}
    found.update({name: (*found, cli.OUTCOMES, True) for name, found in cli.PROPERTIES.items()})
    return found


@functools.cache
def cli_run() -> Path:
    """The tiny trained run the CLI properties use, made once (removed at exit)."""
    from tests.robustness.cli_inputs import train_tiny_run

    root = Path(tempfile.mkdtemp(prefix="drunet-fuzz-cli-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return train_tiny_run(root)


def run(name: str, examples: int, seed: int | None) -> bool:
    """Run one property ``examples`` times; print the count and outcomes; True if it held."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as with_seed
    from hypothesis import strategies as st

    test, strategies, OUTCOMES, is_cli = properties()[name]
    if is_cli:
        strategies = {"cli_run": st.just(cli_run()), **strategies}
    ran = 0

    @functools.wraps(test)  # same database key as the pytest test: each replays the other's finds
    def counted(**kwargs: object) -> None:
        nonlocal ran
        ran += 1
        test(**kwargs)

    runner = settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )(given(**strategies)(counted))
    if seed is not None:
        runner = with_seed(seed)(runner)
    OUTCOMES.clear()
    start = time.perf_counter()
    try:
        runner()
    except Exception:  # a broken property: report it and go on with the next one
        print(f"FAIL {name}: {ran} examples (incl. shrinking), {_outcomes(OUTCOMES)}")
        traceback.print_exc(file=sys.stdout)
        return False
    seconds = time.perf_counter() - start
    print(f"ok   {name}: {ran} examples in {seconds:.1f} s — {_outcomes(OUTCOMES)}", flush=True)
    return True


def _outcomes(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items())) or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000, help="examples per property")
    parser.add_argument(
        "--cli-examples", type=int, default=300, help="examples per CLI property (slower)"
    )
    parser.add_argument("--only", default="", help="run the properties whose name contains this")
    parser.add_argument("--seed", type=int, default=None, help="fix hypothesis's random seed")
    args = parser.parse_args(argv)
    faulthandler.enable()  # a crash in a decoder prints the Python stack before the process dies
    logging.getLogger("drunet").setLevel(logging.ERROR)  # "alpha channel ignored", thousands

    found = properties()
    names = [name for name in found if args.only in name]
    if not names:
        parser.error(f"no property matches {args.only!r}; properties: {', '.join(found)}")
    failed = [
        name
        for name in names
        if not run(name, args.cli_examples if found[name][3] else args.examples, args.seed)
    ]
    print(f"{len(names) - len(failed)} of {len(names)} properties held", end="")
    print(f"; failed: {', '.join(failed)}" if failed else "")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
