"""Simulated monitors and a test broker, speaking the real wire formats.

Errors (one tree, under the project-wide base)::

    ChairsideError                          monitor.errors
    └── SimulatorError                      simulators.errors
        └── BrokerError (+RuntimeError)     simulators.broker: the broker would not start or stop
"""

__all__: list[str] = []  # the package's modules are imported by name
