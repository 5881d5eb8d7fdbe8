"""Scheduled jobs (定时任务): APScheduler wiring of functions that live in the
feature packages. Owns scheduling, not business logic."""
