"""The composition root: what puts the bay together and runs it.

``station.cli`` (the ``chairside`` command; its commands in ``station.commands_bay`` and
``station.commands_records``), ``station.service`` (a running bay: the core,
its store, its sources and its ticker) and ``station.demo`` (a simulated bay with its
dashboard) are the only modules that import every layer; nothing imports them. The layers
below, as the import contracts in pyproject.toml hold them (``lint-imports``)::

    station                      the composition root (this package)
      dashboard                  the web: pages and the HTTP API, through monitor.Monitor
      devices                    the adapters: serial, MQTT, MLLP; bytes in, readings out
      simulators                 monitors that speak the wire formats
    monitor                      the core: readings, buffers, alarms, sessions, the store
    wire                         the wire formats: parse, format, tables (pure)
    monitor.seam + readings      the seam types every layer shares (dependency-free)

Errors (one tree, under the project-wide base)::

    ChairsideError                          monitor.errors
    └── StationError                        station.errors
        ├── CliError                        station.errors: bad input from the user (exit 2)
        └── StopRequested                   station.lifecycle: a stop requested while starting
"""

__all__: list[str] = []  # the package's modules are imported by name
