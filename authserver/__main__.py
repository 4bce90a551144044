"""``python -m authserver``: the same CLI as the ``authserver`` console script."""

from authserver.cli import main

main()
