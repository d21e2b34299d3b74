"""The provider registry: name (URL segment, config `provider:`, metric label) → spec; `build` makes them per app.

The registry holds specs (models and factories), no state: caches and I/O live in the provider
objects that `build` makes, one set per app.
"""

from __future__ import annotations

from typing import Any

from bridge.providers import lettermint, lettr, mailgun, postmark, sendapi, sendgrid, ses, standard_webhooks
from bridge.providers.base import Provider, ProviderIO, ProviderSpec

# Adding a provider: its module (or package) with a SPEC, and one entry here.
PROVIDERS: dict[str, ProviderSpec[Any]] = {
    spec.name: spec
    for spec in (
        lettermint.SPEC,
        lettr.SPEC,
        standard_webhooks.SPEC,
        sendapi.SPEC,
        sendgrid.SPEC,
        mailgun.SPEC,
        postmark.SPEC,
        ses.SPEC,
    )
}


def build(io: ProviderIO | None = None) -> dict[str, Provider[Any]]:
    """One provider object per provider, with this app's I/O."""
    chosen = io or ProviderIO.default()
    return {name: spec.build(chosen) for name, spec in PROVIDERS.items()}
