"""Pilot's ADS server: streams, versions, ACK/NACK bookkeeping and pushes."""
