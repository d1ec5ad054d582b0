"""A named registry: networks, presets, datasets and recipes each keep one.

``Registry("network")`` maps names to entries; ``register(name, entry)`` (or the
decorator form) adds one, ``get(name)`` returns it or raises a ``ValueError``
naming the kind, the name received and every known name.
"""


class Registry:
    """Name -> entry, in registration order."""

    def __init__(self, kind):
        self.kind = kind
        self._entries = {}

    def register(self, name, entry=None):
        """Add ``entry`` under ``name``; without ``entry``, a decorator that adds what it wraps."""
        if entry is None:
            def decorator(wrapped):
                self.register(name, wrapped)
                return wrapped
            return decorator
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind}: a name must be a non-empty string, received {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind}: {name!r} is registered already")
        self._entries[name] = entry
        return entry

    def get(self, name):
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(f"{self.kind}: unknown {self.kind} {name!r}; expected one of "
                             f"{', '.join(self._entries)}") from None

    def __contains__(self, name):
        return isinstance(name, str) and name in self._entries

    def names(self):
        return tuple(self._entries)

    def items(self):
        return tuple(self._entries.items())
