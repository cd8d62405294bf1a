"""``python -m deeprx.cli``: what ``torchrun -m deeprx.cli train ...`` starts in each process."""

from deeprx.cli.app import main

main()
