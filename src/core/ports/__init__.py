"""The contracts the core owns; adapters implement them.

One module per role: ``clock``, ``cache``, ``bus`` are shared; ``catalog``, ``orders`` and
``audit`` hold the repositories and stores of each feature.
"""
