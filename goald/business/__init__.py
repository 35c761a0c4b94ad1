"""The platform's business data: users, rewards, referrals, daily rewards, the outbox. Core: SQL and
rules, no actors (actors/jobs/business.py runs them on a schedule)."""
