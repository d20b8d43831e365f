"""Assets by domain: exchanges (metadata), tiers (Tier 1 ranking, Tier 2 positions), universe."""
