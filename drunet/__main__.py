"""``python -m drunet …`` (what ``torchrun … -m drunet train …`` runs)."""

from drunet.cli.main import main

main()
