"""The multi-host test: ``make cluster-test`` (``python -m deploy.cluster``).

Three authserver hosts (network namespaces when this process may make them, otherwise
loopback addresses, said in the output), each with its own empty keys folder and no shared
disk, one PostgreSQL and one Redis, HAProxy in front, all started from the files an operator
copies: ``deploy/haproxy.cfg``, ``deploy/authserver.service`` and ``deploy/authserver.env``.
Under bounded token load through HAProxy it rotates keys from one host, revokes on one host
and introspects on the others, stops and hangs Redis, hangs and stops PostgreSQL, and kills
one instance; it prints a table of what each did, writes it into ``docs/deploy.md`` and exits
non-zero if anything broke the contract. Everything it started is removed at the end, also
on Ctrl-C or SIGTERM.
"""
