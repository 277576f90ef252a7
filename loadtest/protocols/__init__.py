"""Wire protocols (sans-I/O): one module per protocol, caller and agent side."""
