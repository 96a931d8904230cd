"""Fakes of the network edge: protocol-faithful servers on loopback and recording doubles."""
