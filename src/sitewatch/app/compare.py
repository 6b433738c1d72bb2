"""Which earlier image an observation is compared with: one rule for the dashboard's swipe and the
briefing figure."""

from __future__ import annotations

from sitewatch.core.types import Observation
from sitewatch.store.protocol import Store


def reference_for(ws: Store, observation: Observation) -> Observation | None:
    """What to compare ``observation`` with: the change detector's reference, else the one before."""
    for region in ws.change_regions(observation_id=observation.id):
        return ws.observation(region.reference_observation_id)
    earlier = [
        o
        for o in ws.observations(observation.site_id, until=observation.acquired)
        if o.id != observation.id and o.acquired <= observation.acquired
    ]
    return earlier[-1] if earlier else None
