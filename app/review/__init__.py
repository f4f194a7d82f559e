"""Reviewing traces: rubrics, rounds and queues, reviews and corrections, lead adjudication."""
