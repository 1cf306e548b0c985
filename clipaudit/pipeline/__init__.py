"""What every job shares: loading and checking inputs, encoding, scoring, the results document."""
