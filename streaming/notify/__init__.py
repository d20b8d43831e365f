"""Alert delivery (`livermore notify`): stream:alerts -> webhooks and Apprise services.

Pure core: envref (secrets by variable NAME), destinations, subscriptions, ratelimit, outbox
(queue, retries, digests), digest (message text), chart data. Imperative shell: store (database),
ledger (Redis: idempotency, status, dead letters), consumer (the consumer group), webhook and
apprise_dest (senders), chart rendering, service. docs/alert-delivery.md describes it all.
"""
