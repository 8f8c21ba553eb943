"""End to end through the real Rasa front end: DialogueService -> Rasa (trained model)
-> action server -> Teller's internal API -> answer pipeline, with the demo knowledge
base and a rate sheet current today.

The last test stops Rasa: keep it last in this module.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.answers.types import AnswerResult
from bot.dialogue import DIALOGUE_KIND, DialogueService, RasaClient
from bot.rasa_process import RasaProcesses, free_port
from db import conversations as convo_repo
from tests.rasa.conftest import TellerServer

pytestmark = pytest.mark.slow  # the Teller API loads the embedding model

REFERENCE = re.compile(r"\bHO-[0-9A-F]{8}\b")


def _conversation() -> str:
    return str(uuid.uuid4())


def _stored(teller_api: TellerServer, result: AnswerResult) -> dict[str, object]:
    with teller_api.runtime.sessions() as session:
        answer = convo_repo.get_answer(session, answer_id=result.answer_id)
        assert answer is not None, f"answer {result.answer_id} was not stored"
        return {
            "kind": answer.kind,
            "trace": answer.trace,
            "question": answer.question,
            "channel": answer.channel,
            "degraded": answer.degraded,
        }


def test_greeting_comes_from_the_domain(dialogue: DialogueService) -> None:
    result = dialogue.answer("hello there!", conversation_id=_conversation(), channel="web")
    assert "virtual assistant" in result.text
    assert result.kind == DIALOGUE_KIND
    assert not result.degraded and not result.citations


def test_rate_question_with_a_term_is_answered_from_the_rate_sheet(
    dialogue: DialogueService, teller_api: TellerServer
) -> None:
    conversation = _conversation()
    result = dialogue.answer(
        "What's your 30-year fixed mortgage rate?", conversation_id=conversation, channel="web"
    )
    assert result.kind == "rate", result.text
    assert "6.125%" in result.text
    assert result.citations and result.citations[0].kind == "rate"
    assert result.conversation_id == conversation and not result.degraded
    stored = _stored(teller_api, result)
    assert stored["kind"] == "rate" and stored["channel"] == "web"


def test_rasa_keeps_its_trackers_in_tellers_database(
    dialogue: DialogueService, teller_api: TellerServer
) -> None:
    conversation = _conversation()
    dialogue.answer("hi", conversation_id=conversation)
    with teller_api.runtime.engine.connect() as connection:
        count = connection.execute(
            text("SELECT COUNT(*) FROM events WHERE sender_id = :id"), {"id": conversation}
        ).scalar_one()
    assert count > 0


def test_rate_question_without_a_term_asks_which_term_then_answers(
    dialogue: DialogueService, teller_api: TellerServer
) -> None:
    conversation = _conversation()
    question = dialogue.answer(
        "What's your fixed mortgage rate?", conversation_id=conversation, channel="web"
    )
    assert question.text == "Which term are you interested in: 15 or 30 years?"
    assert question.choices == ["15 years", "30 years"]
    assert question.kind == DIALOGUE_KIND

    answer = dialogue.answer("15 years", conversation_id=conversation, channel="web")
    assert answer.kind == "rate", answer.text
    assert "5.5" in answer.text and "15-year" in answer.text
    stored = _stored(teller_api, answer)
    assert stored["question"] == "What's your fixed mortgage rate for 15 years?"


def test_a_bare_number_answers_the_term_question(dialogue: DialogueService) -> None:
    conversation = _conversation()
    question = dialogue.answer("what are your CD rates?", conversation_id=conversation)
    assert question.choices == ["6 months", "12 months", "24 months"]
    answer = dialogue.answer("12", conversation_id=conversation)
    assert answer.kind == "rate", answer.text
    assert "3.90%" in answer.text or "3.97%" in answer.text


def test_product_question_is_answered_from_the_knowledge_base(dialogue: DialogueService) -> None:
    result = dialogue.answer(
        "Is there a penalty if I withdraw early from a certificate of deposit?",
        conversation_id=_conversation(),
        channel="web",
    )
    assert result.kind == "knowledge", result.text
    assert result.citations and result.citations[0].kind == "passage"
    assert any(c.doc_id == "certificates-of-deposit" for c in result.citations)


def test_service_question_is_answered_from_the_knowledge_base(dialogue: DialogueService) -> None:
    result = dialogue.answer(
        "My card hasn't arrived yet, when will it come?", conversation_id=_conversation()
    )
    assert result.kind == "knowledge", result.text
    assert any(c.doc_id == "card-services" for c in result.citations)


def test_follow_up_question_uses_the_previous_one(dialogue: DialogueService) -> None:
    conversation = _conversation()
    first = dialogue.answer(
        "What's your 30-year fixed mortgage rate?", conversation_id=conversation
    )
    assert "6.125%" in first.text
    follow_up = dialogue.answer("and for 15 years?", conversation_id=conversation)
    assert follow_up.kind == "rate", follow_up.text
    assert "5.5" in follow_up.text


def test_yes_takes_the_one_alternative_offered(dialogue: DialogueService) -> None:
    conversation = _conversation()
    offer = dialogue.answer("What's the rate on a 5/1 ARM?", conversation_id=conversation)
    assert offer.kind == "clarification", offer.text
    assert offer.choices == ["30-year 7/6 ARM mortgage"]
    assert "5.875" not in offer.text  # offered, not quoted
    answer = dialogue.answer("yes please", conversation_id=conversation)
    assert answer.kind == "rate", answer.text
    assert "5.875%" in answer.text and "7/6" in answer.text
    # The offer is used up: another "yes" is only an invitation to ask.
    again = dialogue.answer("yes", conversation_id=conversation)
    assert again.kind == DIALOGUE_KIND and "help" in again.text


def test_no_declines_the_one_alternative_offered(dialogue: DialogueService) -> None:
    conversation = _conversation()
    offer = dialogue.answer("What's the rate on a 5/1 ARM?", conversation_id=conversation)
    assert offer.choices == ["30-year 7/6 ARM mortgage"], offer.text
    declined = dialogue.answer("no thanks", conversation_id=conversation)
    assert declined.kind == DIALOGUE_KIND and "anything else" in declined.text
    assert dialogue.answer("yes", conversation_id=conversation).kind == DIALOGUE_KIND


def test_asking_for_a_person_hands_off_with_a_reference(
    dialogue: DialogueService, teller_api: TellerServer
) -> None:
    result = dialogue.answer(
        "I want to talk to a real person", conversation_id=_conversation(), channel="web"
    )
    assert result.handoff_reference is not None
    assert REFERENCE.fullmatch(result.handoff_reference)
    assert result.handoff_reference in result.text
    assert result.handoff_suggested and result.kind == "abstain"
    stored = _stored(teller_api, result)
    assert stored["trace"] == {
        "route": "handoff",
        "reason": "customer asked for a person",
        "handoff_reference": result.handoff_reference,
    }


def test_out_of_scope_gets_the_scope_message(dialogue: DialogueService) -> None:
    result = dialogue.answer("Can you recommend a good movie?", conversation_id=_conversation())
    assert "only help with banking questions" in result.text
    assert result.kind == DIALOGUE_KIND


def test_bot_challenge(dialogue: DialogueService) -> None:
    result = dialogue.answer("am I chatting with a bot?", conversation_id=_conversation())
    assert "virtual assistant, not a person" in result.text


def test_accepting_the_offer_of_a_person_after_an_abstention(dialogue: DialogueService) -> None:
    conversation = _conversation()
    first = dialogue.answer(UNANSWERABLE[0], conversation_id=conversation)
    assert first.kind == "abstain" and first.handoff_suggested, first.text
    handoff = dialogue.answer("yes please", conversation_id=conversation)
    assert handoff.handoff_reference and handoff.handoff_reference in handoff.text


@pytest.mark.parametrize(
    ("interlude", "reply"),
    [
        ("thanks", "anything else"),  # "You're welcome! Is there anything else ...?"
        ("hello again", "How can I help?"),
        ("Can you recommend a good movie?", "only help with banking questions"),
    ],
)
def test_yes_after_a_change_of_subject_is_not_a_yes_to_the_earlier_offer(
    dialogue: DialogueService, interlude: str, reply: str
) -> None:
    # "yes" after thanks, a greeting or an out-of-scope reply answers that reply, not
    # the offer of a person (or of a rate) made before it.
    conversation = _conversation()
    first = dialogue.answer(UNANSWERABLE[0], conversation_id=conversation)
    assert first.kind == "abstain" and first.handoff_suggested, first.text
    assert reply in dialogue.answer(interlude, conversation_id=conversation).text
    after = dialogue.answer("yes", conversation_id=conversation)
    assert after.kind == DIALOGUE_KIND and after.handoff_reference is None, after.text

    conversation = _conversation()
    offer = dialogue.answer("What's the rate on a 5/1 ARM?", conversation_id=conversation)
    assert offer.choices == ["30-year 7/6 ARM mortgage"], offer.text
    assert reply in dialogue.answer(interlude, conversation_id=conversation).text
    after = dialogue.answer("yes", conversation_id=conversation)
    assert after.kind == DIALOGUE_KIND and "5.875" not in after.text, after.text


def test_yes_after_the_bot_challenge_still_accepts_the_person_offered(
    dialogue: DialogueService,
) -> None:
    # "I'm a virtual assistant ... I can connect you with a colleague whenever you ask."
    conversation = _conversation()
    first = dialogue.answer(UNANSWERABLE[0], conversation_id=conversation)
    assert first.kind == "abstain" and first.handoff_suggested, first.text
    challenge = dialogue.answer("am I chatting with a bot?", conversation_id=conversation)
    assert "virtual assistant, not a person" in challenge.text
    handoff = dialogue.answer("yes please", conversation_id=conversation)
    assert handoff.handoff_reference and handoff.handoff_reference in handoff.text


def test_two_answers_in_a_row_teller_cannot_give_hand_off(dialogue: DialogueService) -> None:
    conversation = _conversation()
    first = dialogue.answer(UNANSWERABLE[0], conversation_id=conversation)
    assert first.kind == "abstain", first.text
    assert first.handoff_reference is None or first.handoff_reference not in first.text
    second = dialogue.answer(UNANSWERABLE[1], conversation_id=conversation)
    assert second.handoff_reference and second.handoff_reference in second.text


def test_streaming_through_rasa_yields_words_then_the_answer(dialogue: DialogueService) -> None:
    events = list(
        dialogue.stream("What's your 30-year fixed mortgage rate?", conversation_id=_conversation())
    )
    assert [e.event for e in events[:-1]] == ["token"] * (len(events) - 1)
    assert events[-1].event == "final"
    final = events[-1].data
    assert "".join(e.data["text"] for e in events[:-1]) == final["text"]
    assert final["kind"] == "rate" and final["degraded"] is False


def test_without_rasa_the_pipeline_answers_and_nothing_is_degraded(
    teller_api: TellerServer,
) -> None:
    service = DialogueService(None, teller_api.runtime.answers)
    result = service.answer("What's your 30-year fixed mortgage rate?")
    assert result.kind == "rate" and not result.degraded


def test_unreachable_rasa_gives_a_degraded_pipeline_answer(
    teller_api: TellerServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = RasaClient(f"http://127.0.0.1:{free_port()}", timeout_s=5)
    try:
        service = DialogueService(client, teller_api.runtime.answers)
        result = service.answer("What's your 30-year fixed mortgage rate?", channel="web")
        events = list(service.stream("What's your 30-year fixed mortgage rate?"))
    finally:
        client.close()
    assert result.degraded and result.kind == "rate" and "6.125%" in result.text
    assert events[-1].event == "final" and events[-1].data["degraded"] is True
    assert _stored(teller_api, result)["degraded"] is True  # the audit record says so too
    assert "answering without it (degraded)" in caplog.text


def test_actions_that_cannot_reach_teller_give_a_degraded_answer(
    rasa_model: Path, teller_api: TellerServer
) -> None:
    broken = RasaProcesses(
        rasa_model,
        api_url=f"http://127.0.0.1:{free_port()}",  # nobody listens: every action call fails
        actions_token=teller_api.token,
        database_url=teller_api.settings.sqlalchemy_url,
        log_dir=teller_api.settings.data_dir / "logs-broken",
    )
    with broken, RasaClient(broken.url, timeout_s=60) as client:
        service = DialogueService(client, teller_api.runtime.answers)
        assert "virtual assistant" in service.answer("hello").text  # Rasa alone still works
        result = service.answer("My card hasn't arrived yet, when will it come?")
    assert result.degraded and result.kind == "knowledge"


def test_rasa_stopped_gives_degraded_answers(
    rasa: RasaProcesses, dialogue: DialogueService
) -> None:
    rasa.stop()
    assert not rasa.server.running and not rasa.actions.running
    result = dialogue.answer(
        "My card hasn't arrived yet, when will it come?", conversation_id=_conversation()
    )
    assert result.degraded and result.kind == "knowledge"


# Service-sounding questions the demo knowledge base does not cover.
UNANSWERABLE = (
    "Can I open a brokerage account to trade options on foreign stock exchanges?",
    "Do you offer safe deposit boxes for storing gold bars?",
)
