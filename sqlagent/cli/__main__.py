"""``python -m sqlagent.cli``: the ``sqlagent`` command, for clients that start a Python module
(an MCP client's config, say) rather than a console script."""

from sqlagent.cli import main

main()
