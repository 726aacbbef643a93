"""Mistakes in what a user gave (a recipe value, a folder, an input) reported as one line, not a traceback.

``UserInputError`` marks an exception whose message already says what is wrong and with which file or value;
``one_line_errors(prog)`` wraps a command's entry point so that such an error (and a FileNotFoundError, whose
message names the path) prints ``prog: error: MESSAGE`` on stderr and exits with status 2, as argparse does
for a bad flag. Anything else is a real failure and keeps its traceback.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

USER_ERROR_EXIT_CODE = 2


class UserInputError(Exception):
    """A problem with the user's input; the message names the input and the problem (one line)."""


class UserValueError(UserInputError, ValueError):
    """A value the user gave that cannot work (an option, a split name, ...)."""


class RecipeError(UserValueError):
    """A recipe value that cannot work (e.g. num_frames: 0); raised before any data is read."""


def is_user_error(error: BaseException) -> bool:
    return isinstance(error, (UserInputError, FileNotFoundError, NotADirectoryError))


@contextmanager
def one_line_errors(prog: str):
    """``with one_line_errors("train.py"): main()``: user errors exit 2 with one line on stderr."""
    try:
        yield
    except BaseException as error:  # noqa: BLE001 - re-raised unless it is a user error
        if not is_user_error(error):
            raise
        print(f"{prog}: error: {str(error).strip()}", file=sys.stderr, flush=True)
        sys.exit(USER_ERROR_EXIT_CODE)
