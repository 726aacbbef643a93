"""Mistakes in what a user gave (a recipe value, a folder, an input) reported as one line, not a traceback.

``UserInputError`` marks an exception whose message already says what is wrong and with which file or value;
``one_line_errors(prog)`` wraps a command's entry point so that such an error (and a FileNotFoundError, whose
message names the path) prints ``prog: error: MESSAGE`` on stderr and exits with status 2, as argparse does
for a bad flag. Anything else is a real failure and keeps its traceback.

``say_signals(prog)`` makes a command that a signal stops (SIGTERM from ``kill``, a scheduler or a container
runtime; SIGHUP when its terminal goes) say so in one line and exit with 128 + the signal's number, as a shell
reports it; training's own handling of SIGTERM (save, then exit) is ``pipeline.training``'s, not this.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from contextlib import contextmanager

USER_ERROR_EXIT_CODE = 2


class UserInputError(Exception):
    """A problem with the user's input; the message names the input and the problem (one line)."""


class UserValueError(UserInputError, ValueError):
    """A value the user gave that cannot work (an option, a split name, ...)."""


class RecipeError(UserValueError):
    """A recipe value that cannot work (e.g. num_frames: 0); raised before any data is read."""


# A Hub repo id: "name" or "owner/name" of letters, digits, "-", "_" and "." (huggingface_hub's rule, without
# its length limit): anything else given as a model can only be a local path.
HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def check_model_reference(reference: str, option: str = "--model") -> None:
    """A model given as a local path that does not exist stops the command here, naming the path, instead of
    failing inside huggingface_hub with "Repo id must be in the form..." after a long traceback. A string that
    can be a Hub id (``owner/name``) is left to the Hub."""
    reference = os.fspath(reference)
    if os.path.exists(os.path.expanduser(reference)):
        return
    looks_local = os.path.isabs(reference) or reference.startswith((".", "~")) or not HUB_ID.match(reference)
    if looks_local:
        raise FileNotFoundError(f"{option} {reference}: no such model folder (a local path; a Hub model is "
                                "given as owner/name)")


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


def say_signals(prog: str, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP)) -> None:
    """Installs, in the main thread, handlers that print ``prog: stopped by SIGTERM (signal 15)`` on stderr and
    leave through SystemExit(128 + number), so ``with`` blocks still remove temporary files."""

    def stop(number, _frame):
        print(f"{prog}: stopped by {signal.Signals(number).name} (signal {number})", file=sys.stderr, flush=True)
        raise SystemExit(128 + number)

    for number in signals:
        signal.signal(number, stop)
