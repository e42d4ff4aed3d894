"""``python -m instab.book ...``: the driver's command line (:func:`instab.book.cli.main`)."""

from instab.book.cli import main

main()
