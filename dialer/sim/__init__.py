"""Pacing science: a discrete-event simulator on virtual time that drives the campaign core
(`dialer.core.campaign.CampaignEngine`, the object the asyncio runtime drives) through a
simulated telephone network, agents and lead store; policies side by side; the bench.

    python -m dialer.sim scenario a20-l15-t180 --policy predictive
    python -m dialer.sim grid --quick
"""

from dialer.sim.metrics import RunResult, Series
from dialer.sim.policy import Policy
from dialer.sim.scenario import Carrier, Customers, Scenario, Staff
from dialer.sim.simulator import Simulator, simulate

__all__ = ["Carrier", "Customers", "Policy", "RunResult", "Scenario", "Series", "Simulator", "Staff",
           "simulate"]
