"""What a user sees of errors and warnings: ConfigError; the message inside a torch / TorchScript error text
(the same rule as the C++ loader's bpnn::error_message; cases in tests/fixtures/error_messages.txt),
and the user's own line as the place a warning points at."""

import os
import re
import sys

import ase

_RAISED_IN_SCRIPT = re.compile(r"^builtins\.\w+: ")  # an exception raised inside TorchScript
_NOISE = ("frame #", "Exception raised from", "Traceback", 'File "', "The following operation failed")
_ERROR_PREFIX = re.compile(r"^\w+Error: ")
_ZIP_ADVICE = " This is an internal miniz error"  # torch's paragraph of advice after a damaged-zip message
_INTERNAL = tuple(os.path.dirname(os.path.abspath(path)) + os.sep  # bpnn_ts and ASE
                  for path in (os.path.dirname(__file__) + os.sep + "__init__.py", str(ase.__file__)))


class ConfigError(ValueError):
    """A config file (model, training, selection) that does not describe a valid run: the message
    names the key and the allowed values."""


class UntrainedModelWarning(UserWarning):
    """A model with its initial random weights was exported."""


def error_message(text: str) -> str:
    """The message in a torch error text: the text after the last `builtins.<Name>: ` line (raised
    inside TorchScript), else the first line that is not a traceback or backtrace line, without a
    leading `<Name>Error: `, else the whole text trimmed; torch's advice after a damaged-zip message
    (" This is an internal miniz error. ...") is cut."""
    lines = [line.split(_ZIP_ADVICE)[0].rstrip() for line in text.splitlines()]
    raised = [line for line in lines if _RAISED_IN_SCRIPT.match(line)]
    if raised:
        return _RAISED_IN_SCRIPT.sub("", raised[-1])
    for line in lines:
        if not line or line[0].isspace() or line.startswith(_NOISE) or not line.strip("~^ "):
            continue
        return _ERROR_PREFIX.sub("", line)
    return text.strip()


def user_stacklevel() -> int:
    """`stacklevel` for a warnings.warn in the calling function, such that the warning points at the
    first frame outside bpnn_ts and ASE: the user's own line."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(_INTERNAL):
        frame = frame.f_back
        level += 1
    return level
