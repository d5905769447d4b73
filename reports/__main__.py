"""`python -m reports ...`: see reports/cli.py."""

from rnn_behaviour.reports.cli import main

raise SystemExit(main())
