"""Operator tools run from the repository root with ``python -m``: the benchmark
(``deploy.bench``, ``make bench``) and the reliability run (``deploy.reliability``,
``make reliability``). They drive the real server through the test harness in
``tests/support`` (servers, PostgreSQL), but they are measurements that write reports under
``docs/``, not tests: pytest does not collect them."""
