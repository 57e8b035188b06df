"""Zero-cost proxies: a score of an untrained network that ranks architectures without training.

Each proxy is a module here that registers its class with ``PROXIES`` (see ``base.py``).
A run's ``--proxy`` picks one; :func:`~nasforge.proxies.base.make_scorer` turns it into the
callable a strategy uses to pick its first candidates (``Strategy.sample_initial``).
"""
from __future__ import annotations

from .base import NO_PROXY, PROXIES, Proxy, ProxyScorer, make_scorer, proxy_names

__all__ = ["NO_PROXY", "PROXIES", "Proxy", "ProxyScorer", "make_scorer", "proxy_names"]
