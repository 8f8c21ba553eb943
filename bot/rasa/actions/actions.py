"""Teller's custom actions (rasa_sdk): answer through Teller's API, ask for the term of a
rate question, hand the conversation to a person.

Every answer is sent twice in one bot message: as text (for any Rasa channel) and as
the custom payload `{"teller": <AnswerResult>}`, which Teller's `/v1/chat` returns as
it is (answer_id, citations, kind...). When Teller's API cannot be reached the payload
is `{"teller_error": "answer_unavailable"}` so that `/v1/chat` answers without Rasa.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from .teller_api import TellerApi, TellerApiError, channel_for, conversation_id_for
from .terms import join_terms, match_term, question_with_term, term_in_reply

log = logging.getLogger(__name__)

# Answers in a row Teller could not give before the conversation goes to a person.
MAX_FAILED_ANSWERS: Final = 2
DEFAULT_HANDOFF_TEXT: Final = (
    "I'm passing you to a colleague, who will see our conversation so far. "
    "Your reference is {reference}."
)


def _ids(tracker: Tracker) -> tuple[str, str]:
    """(Teller conversation id, Teller channel) of this conversation."""
    metadata = (tracker.latest_message or {}).get("metadata")
    return conversation_id_for(tracker.sender_id), channel_for(metadata)


def _latest_text(tracker: Tracker) -> str:
    return str((tracker.latest_message or {}).get("text") or "").strip()


def _forget_question() -> list[EventType]:
    """Clear the slots of the question just answered, so the next one starts clean."""
    return [
        SlotSet("term", None),
        SlotSet("term_choices", None),
        SlotSet("rate_question", None),
        SlotSet("product", None),
        SlotSet("amount", None),
        SlotSet("currency", None),
        SlotSet("choice_offered", False),
    ]


def _offers_withdrawn() -> list[EventType]:
    """Clear what the last answer offered (a person, one alternative): the next "yes"
    answers something else."""
    return [SlotSet("handoff_offered", False), SlotSet("choice_offered", False)]


def _buttons(choices: list[str]) -> list[dict[str, str]]:
    # Plain-text payloads: a client sends the title back as the customer's message.
    return [{"title": choice, "payload": choice} for choice in choices]


def _response_text(domain: DomainDict, name: str, default: str) -> str:
    variants = (domain.get("responses") or {}).get(name) or []
    text = variants[0].get("text") if variants else None
    return str(text) if text else default


class ActionAnswer(Action):
    """Ask Teller's answer pipeline; count answers it could not give."""

    def name(self) -> str:
        return "action_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        conversation_id, channel = _ids(tracker)
        question = tracker.get_slot("rate_question")
        term = tracker.get_slot("term")
        if question and term and tracker.get_slot("term_choices"):
            message = question_with_term(str(question), str(term))  # the form asked for it
        else:
            message = _latest_text(tracker)
        if not message:
            dispatcher.utter_message(response="utter_default")
            return _forget_question()
        try:
            api = TellerApi.from_env()
            result = await api.answer(message, conversation_id=conversation_id, channel=channel)
        except TellerApiError as exc:
            log.error("Teller's answer API failed: %s", exc)
            dispatcher.utter_message(
                response="utter_answer_unavailable",
                json_message={"teller_error": "answer_unavailable"},
            )
            return _forget_question()

        events = _forget_question()
        if result.get("kind") == "abstain":
            failed = int(tracker.get_slot("failed_answers") or 0) + 1
            if failed >= MAX_FAILED_ANSWERS:
                # The stored abstention stays in the trace; the customer hears the handoff.
                return [
                    *events,
                    SlotSet("failed_answers", 0.0),
                    SlotSet("handoff_offered", False),
                    FollowupAction("action_handoff"),
                ]
        else:
            failed = 0
        dispatcher.utter_message(
            text=str(result.get("text") or ""),
            buttons=_buttons([str(c) for c in result.get("choices") or []]),
            json_message={"teller": result},
        )
        return [
            *events,
            SlotSet("failed_answers", float(failed)),
            SlotSet("handoff_offered", bool(result.get("handoff_suggested"))),
            SlotSet("choice_offered", len(result.get("choices") or []) == 1),
        ]


class ActionHandoff(Action):
    """Hand the conversation to a person: Teller records it and returns a reference."""

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        conversation_id, channel = _ids(tracker)
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        reason = {
            "request_human": "customer asked for a person",
            "affirm": "customer accepted the offer of a person",
        }.get(str(intent), f"{MAX_FAILED_ANSWERS} questions in a row Teller could not answer")
        text = _response_text(domain, "utter_handoff", DEFAULT_HANDOFF_TEXT)
        events = [
            *_forget_question(),
            SlotSet("handoff_offered", False),
            SlotSet("failed_answers", 0.0),
        ]
        try:
            api = TellerApi.from_env()
            result = await api.handoff(
                conversation_id=conversation_id,
                channel=channel,
                message=_latest_text(tracker) or "(handoff)",
                reason=reason,
                text=text,
            )
        except TellerApiError as exc:
            log.error("Teller's handoff API failed: %s", exc)
            dispatcher.utter_message(response="utter_handoff_unavailable")
            return events
        dispatcher.utter_message(
            text=str(result.get("text") or ""), json_message={"teller": result}
        )
        return [*events, SlotSet("handoff_reference", result.get("handoff_reference"))]


class ActionHandoffDeclined(Action):
    """The customer does not want the person, or the one alternative, offered."""

    def name(self) -> str:
        return "action_handoff_declined"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_anything_else")
        return _offers_withdrawn()


class _ReplyWithdrawingOffers:
    """Mixin for actions that send a fixed domain reply and forget what the last answer
    offered (a person, one alternative). These replies change the subject ("Hello! ...
    How can I help?", "Is there anything else I can help you with?"), so a "yes" after
    them is not a yes to the earlier offer. The bot challenge keeps the offers: its reply
    says a colleague is available, so a "yes" after it may well accept the person
    offered. Not an `Action` itself: rasa_sdk registers every `Action` subclass, and
    this one has no name."""

    action_name: str
    response: str

    def name(self) -> str:
        return self.action_name

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response=self.response)
        return _offers_withdrawn()


class ActionYouAreWelcome(_ReplyWithdrawingOffers, Action):
    """Answer thanks ("You're welcome! Is there anything else I can help you with?")."""

    action_name = "action_you_are_welcome"
    response = "utter_you_are_welcome"


class ActionGreet(_ReplyWithdrawingOffers, Action):
    """Answer a greeting, also one in the middle of a conversation."""

    action_name = "action_greet"
    response = "utter_greet"


class ActionOutOfScope(_ReplyWithdrawingOffers, Action):
    """Say what the assistant helps with."""

    action_name = "action_out_of_scope"
    response = "utter_out_of_scope"


class ActionGoodbye(_ReplyWithdrawingOffers, Action):
    """Say goodbye; a conversation picked up again starts without the old offers."""

    action_name = "action_goodbye"
    response = "utter_goodbye"


class ActionAskTerm(Action):
    """Ask which term, offering the terms the rate sheet has for the question."""

    def name(self) -> str:
        return "action_ask_term"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        choices = [str(c) for c in tracker.get_slot("term_choices") or []]
        dispatcher.utter_message(
            response="utter_which_term", term_options=join_terms(choices), buttons=_buttons(choices)
        )
        return []


class ValidateRateForm(FormValidationAction):
    """Require the term only when the rate sheet offers several for the question."""

    def name(self) -> str:
        return "validate_rate_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events: list[EventType] = []
        # Rasa marks the form active before validating at activation; until the form
        # has asked for a slot, `requested_slot` is empty: the form starts now.
        if tracker.get_slot("requested_slot") is None:
            question = _latest_text(tracker)
            conversation_id, _channel = _ids(tracker)
            try:
                api = TellerApi.from_env()
                choices = await api.term_choices(question, conversation_id=conversation_id)
            except TellerApiError as exc:
                # Without the rate sheet's terms, ask nothing: the answer pipeline
                # asks its own clarifying question if the rate is ambiguous.
                log.error("Teller's term-choices API failed: %s", exc)
                choices = []
            events = [SlotSet("term_choices", choices), SlotSet("rate_question", question)]
            tracker.slots.update({"term_choices": choices, "rate_question": question})
            if not choices:
                tracker.slots["term"] = None
                events.append(SlotSet("term", None))
        return events + await super().run(dispatcher, tracker, domain)

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        return ["term"] if tracker.get_slot("term_choices") else []

    def extract_term(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A bare reply to "which term?" ("15", "the thirty year one")."""
        if tracker.get_slot("requested_slot") != "term":
            return {}
        choices = [str(c) for c in tracker.get_slot("term_choices") or []]
        found = term_in_reply(_latest_text(tracker), choices)
        return {"term": found} if found else {}

    def validate_term(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        choices = [str(c) for c in tracker.get_slot("term_choices") or []]
        if not choices:
            return {"term": slot_value}
        found = match_term(str(slot_value or ""), choices)
        if found is None:
            dispatcher.utter_message(
                response="utter_term_not_offered", term_options=join_terms(choices)
            )
            return {"term": None}
        return {"term": found}
