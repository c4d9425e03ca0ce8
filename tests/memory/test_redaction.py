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
