"""Teller's Rasa project (Rasa Open Source 3.6): domain, config, training data, tests,
and the custom actions in `actions/`. It is trained and run from its own Python 3.10
virtualenv (`make rasa-setup`); see README.md in this folder."""
