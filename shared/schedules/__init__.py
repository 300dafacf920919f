"""Business-hours windows and batch schedules: what the calendar wants hosted, and when.

Owns the window and batch declarations of a hosted model (`models.py`, validated with the
hosted-models file), the occurrence math over local calendars with daylight saving, public
holidays and closed dates (`occurrences.py`, pure: UTC in, UTC out, the clock passed in), the
reconciler's decision of which window holds a model needs now and which batch runs are due
(`reconcile.py`, pure), and the timer's flow that applies that decision to the hold ledger and
takes one provisioning step (`flows.py`). Running a batch belongs to `shared/batch/`; this
package only says that a run is due, through the `BatchStarter` port (`ports.py`).
"""
