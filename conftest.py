"""The checkout's pytest configuration: the rnn-behaviour plugin, which lives in
rnn_behaviour/plugin.py so that an installed copy of the suite carries it too
(`rnn-behaviour run`, or `pytest -p rnn_behaviour.plugin --pyargs rnn_behaviour.benchmarks`)."""

pytest_plugins = ["rnn_behaviour.plugin"]
