"""The long-running process: the service that assembles the stages, the scheduler's jobs, and
the retention policy they run.
"""
