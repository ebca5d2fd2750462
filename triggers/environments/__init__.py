"""Environments: where a trigger's jobs deploy to, and the rules that gate them there.

- `models`: Environment (rules and lock) and JobApproval;
- `gate`: what a new job of an environment becomes, and moving the next waiting job on
  (called by the run and by every way a job ends, in their transaction);
- `services`: rules, locks, approvals and rollback (a person's acts, audited);
- `selectors`: the current deployment, the queue with its reasons, the history.
"""
