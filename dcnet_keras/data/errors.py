"""The one error type of the input pipelines."""


class DataError(ValueError):
    """A problem with the input data; the message is one line naming the file or the value."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))
