"""Monitoring: reference sketches of training data, drift of served traffic against them, and (later) collection,
alert rules and the switch back to the stable version."""
