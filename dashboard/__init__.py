__all__: list[str] = []  # the package's modules are imported by name
