"""The reliability run: ``python -m deploy.reliability`` (``make reliability``) writes
``docs/reliability.md``; ``python -m deploy.reliability.hostile`` prints the hostile-client
rows alone."""
