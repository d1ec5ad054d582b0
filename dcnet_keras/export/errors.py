"""The one error type of :mod:`dcnet_keras.export`."""


class ExportError(ValueError):
    """The model or its checkpoint cannot be exported or loaded; the message says why."""


def one_line(error):
    """An error's message on one line: its first 4 non-blank lines joined by ``"; "``, then
    ``" ... (<n> more)"``; cut at 2000 characters."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    shown = lines[:4]
    more = f" ... ({len(lines) - len(shown)} more)" if len(lines) > len(shown) else ""
    text = "; ".join(shown) + more
    return text if len(text) <= 2000 else text[:2000] + " ..."
