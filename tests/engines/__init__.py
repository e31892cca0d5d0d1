"""Real engines for the tests: a Docker engine with a registry and a Swarm, Kubernetes with a real node, Prometheus.

The pytest plugin (`engines.plugin`, loaded by tests/conftest.py) hands them out as session fixtures, uses the
ones `scripts/infra/up.sh` started when its environment variables are set, or starts them for the session
(root on Debian), and makes a skipped engine test a failure under CI=true. See docs/TESTING.md.
"""
