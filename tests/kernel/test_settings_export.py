"""Settings as a backup keeps them: no secret value, wherever it sits (a SecretStr, a webhook's secret, a hook's
signing secret, the password inside REDIS_URL), and each one named so that the operator knows to set it again."""
from __future__ import annotations

import json

from kernel.settings import Settings
from kernel.settings_export import differences, exported
from kernel.settings_models import SmtpSettings, WebhookSettings, WebhookTarget

SECRETS = ("redis-pass-41", "smtp-pass-77", "crm-secret-13", "orders-secret-29")


def test_no_secret_is_exported_and_each_set_one_is_named() -> None:
    settings = Settings(
        redis_url=f"redis://deputy:{SECRETS[0]}@127.0.0.1:6379/3", smtp=SmtpSettings(host="mail.example", password=SECRETS[1]),
        webhooks=WebhookSettings(outbound={"crm": WebhookTarget(url="https://crm.example/hook", secret=SECRETS[2])},
                                 inbound={"orders": SECRETS[3]}))
    plain, secrets = exported(settings)
    text = json.dumps(plain)
    assert not any(secret in text for secret in SECRETS)
    assert secrets == ["REDIS_URL (its password)", "SMTP_PASSWORD", "OUTBOUND_WEBHOOKS (crm.secret)", "INBOUND_HOOKS (orders)"]
    assert plain["redis_url"] == "redis://deputy@127.0.0.1:6379/3" and plain["smtp"]["host"] == "mail.example"
    assert plain["webhooks"]["outbound"]["crm"]["url"] == "https://crm.example/hook"


def test_differences_are_named_by_their_variables_and_unset_secrets_are_not_one() -> None:
    backup, _ = exported(Settings(workers=4, smtp=SmtpSettings(host="mail.example", password="x-secret")))
    here, _ = exported(Settings())
    assert differences(backup, here) == [("SMTP_HOST", "mail.example", "null"), ("WORKERS", "4", "2")]


def test_the_embedded_redis_password_is_not_named_deputy_makes_its_own(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "password").write_text("made-by-deputy-5a\n")
    plain, secrets = exported(Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:6379/0"))
    assert secrets == [] and plain["redis_url"] == "redis://127.0.0.1:6379/0"
