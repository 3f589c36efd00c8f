"""What the hotline does about what it found: takedown notices to hosting providers, escalation to police.

`vigie.actions.takedown` keeps the provider registry and sends notices (re-sent until the crawler
sees the media gone); `vigie.actions.escalation` packs one report's whole history for the police.
Neither ever carries known material: notices and exports hold URLs and hashes only.
"""
