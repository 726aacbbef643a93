"""``python -m pipeline.evaluation``: see ``pipeline.evaluation.command``; a failure ends the process promptly,
a user's mistake (a missing folder, an impossible option) with one line and status 2."""

from pipeline.evaluation.command import main
from pipeline.process_exit import run_or_exit
from pipeline.user_errors import one_line_errors, say_signals


def _main() -> None:
    with one_line_errors("python -m pipeline.evaluation"):
        main()


say_signals("python -m pipeline.evaluation")
run_or_exit(_main)
