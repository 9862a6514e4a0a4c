"""The bus: transports behind the Bus port, the CloudEvents codec and partitioning."""
