"""Scheduled runs of a trigger: a cron expression in a timezone fires a job (issue 23).

- `models`: Schedule and ScheduleFire (imported by triggers/models.py, so the app owns them);
- `cron`: cronsim behind one small interface (validation, next fire times, the plain reading);
- `services`: create/update/delete with audit, `schedules_fire_due` (the beat tick) and `schedule_fire`;
- `api`: `/api/orgs/<orgId>/triggers/<triggerId>/schedules[/<id>]`; `views`: the trigger page's forms.
"""
