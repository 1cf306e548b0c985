"""Shipped taxonomy files, installed as the package ``clipaudit.taxonomies``.

Each ``*.yaml`` here can be named without a path (``clipaudit audit --taxonomy
clip_denigration``); see :func:`clipaudit.taxonomy.shipped_taxonomies`.
"""
