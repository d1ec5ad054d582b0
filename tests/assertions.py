"""Assertions shared by the tests."""

import pytest


def one_line_error(error_type, fn, *args, **kwargs):
    """Call ``fn`` expecting ``error_type``; return its message, asserted to be one line."""
    with pytest.raises(error_type) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message
    return message


def cli_error_line(main, argv):
    """Run a CLI's ``main(argv)`` expecting it to exit with one line ``error: ...``; return it."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    message = str(info.value)
    assert message.startswith("error: ") and "\n" not in message, message
    return message
