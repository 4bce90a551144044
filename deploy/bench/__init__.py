"""The benchmark: ``python -m deploy.bench`` (``make bench``); see ``__main__``."""
