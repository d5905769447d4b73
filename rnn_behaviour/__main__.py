"""`python -m rnn_behaviour ...`: the `rnn-behaviour` command (rnn_behaviour/cli.py)."""

import sys

from rnn_behaviour.cli import main

sys.exit(main())
