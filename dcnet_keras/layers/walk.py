"""Every layer of a model, nested models included."""


def all_layers(model):
    """``model`` and every layer below it, depth first."""
    found = []

    def walk(layer):
        found.append(layer)
        for child in getattr(layer, "layers", ()):
            walk(child)

    walk(model)
    return found
