from kernel.settings import Settings
from memory.redaction import Redactor, secret_values


def test_credentials_are_masked_by_their_shape():
    mask = Redactor().text
    assert mask("POST https://api.telegram.org/bot987654321:AAHdqTcv-x_y/getUpdates") == "POST https://api.telegram.org/bot***/getUpdates"
    assert mask("{'Authorization': 'Bearer xoxb-1111-2222-abc'}") == "{'Authorization': 'Bearer ***'}"
    assert mask("tokens xoxb-1-2-abc xoxp-3-4 xapp-1-A1-2-def sk-proj-abcdefghij") == "tokens *** *** *** ***"
    assert mask("redis://:hunter22@db:6379/0") == "redis://:***@db:6379/0"
    # words that merely contain the prefixes stay
    assert mask("task-list, risk-free, sk-learn, 12:30") == "task-list, risk-free, sk-learn, 12:30"


def test_configured_secrets_are_masked_anywhere_even_percent_encoded():
    mask = Redactor(["orders/hook secret", "abc"]).text
    assert mask("signed with orders/hook secret") == "signed with ***"
    assert mask("GET /x?s=orders%2Fhook%20secret") == "GET /x?s=***"
    assert mask("abc is too short to be masked everywhere") == "abc is too short to be masked everywhere"


def test_assignments_are_masked_only_when_asked():
    line = "parameters {'url': 'https://x', 'secret_token': 's3cr3t'} ?token=abc password: \"p\" prompt_tokens=12"
    assert Redactor(assignments=True).text(line) == \
        "parameters {'url': 'https://x', 'secret_token': '***'} ?token=*** password: \"***\" prompt_tokens=12"
    assert Redactor().text(line) == line


def test_values_mask_secret_named_keys_but_not_counts():
    data = {"bot_token": "x", "API-Key": 1, "signing_secret": None, "nested": [{"password": "p", "ok": "sk-abcdefghij"}],
            "prompt_tokens": 10, "max_tokens": 5, "tokens": ["a"]}
    assert Redactor().value(data) == {"bot_token": "***", "API-Key": "***", "signing_secret": "***",
                                      "nested": [{"password": "***", "ok": "***"}], "prompt_tokens": 10, "max_tokens": 5, "tokens": ["a"]}


def test_secret_values_reaches_nested_models_and_dicts():
    settings = Settings(slack={"bot_token": "xoxb-1"}, telegram={"bot_token": "1:abc"}, openai={"api_key": "sk-1"},
                        webhooks={"outbound": {"crm": {"url": "https://crm.example", "secret": "out-secret"}, "plain": {"url": "https://x"}},
                                  "inbound": {"orders": "in-secret"}})
    assert sorted(secret_values(settings)) == ["1:abc", "in-secret", "out-secret", "sk-1", "xoxb-1"]


def test_credential_shaped_values_are_masked_in_any_field():
    mask = Redactor().text
    assert mask("ghp_abcdefghijklmnopqrstuv123 AKIAABCDEFGHIJKLMNOP") == "*** ***"
    assert mask("Bearer-less eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.SflKxwRJSMeKKF2QT4") == "Bearer-less ***"


def test_an_llm_call_in_the_trace_shows_its_counts_even_when_a_secret_is_digits(redis):
    from memory.events import EventLog

    # a configured secret that happens to be a number must not hide a count that equals it
    events = EventLog(redis, "ws", secrets=["2048", "hunter22"])
    events.record("t1", "llm.call", actor="budget", model="smollm2", prompt_tokens=2048, completion_tokens=12, max_tokens=600,
                  total_tokens=2060, api_key="k", error="auth hunter22 refused", headers={"authorization": "Bearer x", "cookie": "c"})
    [event] = events.timeline("t1")
    assert event.data == {"model": "smollm2", "prompt_tokens": 2048, "completion_tokens": 12, "max_tokens": 600,
                          "total_tokens": 2060, "api_key": "***", "error": "auth *** refused",
                          "headers": {"authorization": "***", "cookie": "***"}}
    assert '"prompt_tokens": 2048' in event.summary
