"""``python -m avmnist_torch.cli``: the same as the ``avmnist`` command."""

import sys

from . import main

sys.exit(main())
