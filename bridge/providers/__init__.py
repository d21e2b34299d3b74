"""PROVIDERS: provider name (URL segment, config key, metric label) → implementation."""

from __future__ import annotations

from bridge.providers.base import Provider
from bridge.providers.lettermint import Lettermint
from bridge.providers.lettr import Lettr
from bridge.providers.mailgun import Mailgun
from bridge.providers.postmark import Postmark
from bridge.providers.sendapi import SendAPI
from bridge.providers.sendgrid import SendGrid
from bridge.providers.ses import Ses
from bridge.providers.standard_webhooks import StandardWebhooks

PROVIDERS: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        Lettermint(),
        Lettr(),
        StandardWebhooks(),
        SendAPI(),
        SendGrid(),
        Mailgun(),
        Postmark(),
        Ses(),
    )
}
