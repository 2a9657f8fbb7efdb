"""Imported first by the runner's fork server, and only there: the server lets go of the
caller's stdout and stderr, and of its terminal's signals.

TensorFlow's import prints warnings that ignore TF_CPP_MIN_LOG_LEVEL (absl's pre-init
logging), which would land on the caller's terminal at a random moment (in the middle of
a quiz, say); and a server still importing TensorFlow when its caller exits would hold
the caller's pipes open. Every run forked from the server writes to a log of its own.

The server leaves the caller's process group: a Ctrl-C at the terminal goes to the caller
alone, which stops its runs itself (each in a session of its own), instead of also
interrupting the server, perhaps halfway through importing TensorFlow. The server still
ends with its caller (multiprocessing closes its pipe).
"""

import os

_devnull = os.open(os.devnull, os.O_RDWR)
for _fd in (0, 1, 2):
    os.dup2(_devnull, _fd)
os.close(_devnull)
os.setpgid(0, 0)
