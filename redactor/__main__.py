"""`python -m redactor` is the same as the `redactor` console script."""

from redactor.cli import main

raise SystemExit(main())
