"""PROVIDERS: provider name (URL segment, config key, metric label) → implementation."""

from __future__ import annotations

from bridge.providers.base import Provider
from bridge.providers.lettermint import Lettermint

PROVIDERS: dict[str, Provider] = {provider.name: provider for provider in (Lettermint(),)}
