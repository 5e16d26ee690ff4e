"""Sample device output for the tests (wire lines, messages), one module per family."""
