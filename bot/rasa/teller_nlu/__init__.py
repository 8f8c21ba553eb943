"""Teller's own Rasa NLU components (imported by Rasa from the project folder)."""
