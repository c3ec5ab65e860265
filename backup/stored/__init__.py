"""Stored backups: made, previewed and restored by a background worker, kept in the `backups`
storage, listed, downloaded through signed links.

`backups` makes and manages stored backups, `restores` previews and imports them (or an upload)
as jobs, `links` signs download links, `leases` tells a live worker from a dead one, `storage`
writes files so that only complete ones appear, `emails` tells the user who asked, and `tasks`
are the entry points a worker runs (Django's tasks framework).

Automatic backups: `schedules` keeps each tenant's schedule and makes the scheduler's pass,
`slots` is its time arithmetic (time zones, daylight saving, the spreading offset), `drills`
proves a stored backup restores, `retention` prunes what the rules no longer keep and repairs
storage against the rows, and `alerts` reports what someone must look at.
"""
