"""goald.actors: the supervised actor tree (installed as `goald.actors`, never as `actors`).

The supervisor, clock and job actors arrive with the actor-runtime issue.
"""
