"""Shipped sweep specs: variants generated as combinations for `clipaudit sweep --spec NAME`."""
