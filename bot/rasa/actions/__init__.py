"""Teller's custom actions, served by `rasa run actions` (rasa_sdk) from the Rasa venv.

`actions.py` holds the rasa_sdk actions; `teller_api.py` (HTTP calls to Teller's
internal API) and `terms.py` (term matching) use only the standard library, so Teller's
own test suite imports and tests them without rasa_sdk.
"""
