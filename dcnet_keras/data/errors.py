"""The one error type of the input pipelines."""


class DataError(ValueError):
    """A problem with the input data; the message is one line naming the file or the value."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


def first_line(error):
    """The first line of an exception's message (TensorFlow's ``message`` when it has one),
    or its type name when the message is empty."""
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__
