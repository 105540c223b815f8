"""The simulated servers: Redis nodes, the MySQL server, the message broker."""
