"""``python -m avmnist_torch.cli``: the same as the ``avmnist-audio`` command."""

import sys

from . import main

sys.exit(main())
