"""Mutation testing of Frontdesk's core: ``python -m tools.mutation`` (see README, "Mutation testing")."""
