"""Reads of the insights: per environment (the DORA measures), per trigger and for the agent fleet.

Each answers from a fixed, small number of indexed queries whatever the size of the org's history,
so a page or an API answer stays fast at hundreds of thousands of jobs.
"""

from .agents import AgentsInsights, agents_insights
from .deploys import EnvironmentDeploys, deploys_by_environment
from .triggers import TriggerInsights, trigger_insights

__all__ = [
    "AgentsInsights",
    "EnvironmentDeploys",
    "TriggerInsights",
    "agents_insights",
    "deploys_by_environment",
    "trigger_insights",
]
