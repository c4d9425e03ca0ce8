"""Settings as a backup keeps them: every value but the secrets, which are named instead, so that whoever restores
knows what to set. A secret is a SecretStr anywhere in Settings, or the password inside a URL (REDIS_URL carries
the embedded Redis's)."""
from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import BaseModel, SecretBytes, SecretStr

from kernel.redis_url import password_file
from kernel.settings import Settings, env_name

_LEFT_OUT = object()


def exported(settings: Settings) -> tuple[dict[str, Any], list[str]]:
    """(the settings without their secrets, as JSON values; the names of the secrets that were set)."""
    secrets: list[str] = []
    plain = _plain(settings, (), secrets)
    if _embedded_password(settings):
        # Deputy made it for its embedded Redis: it makes another on the new machine, nobody sets it
        secrets.remove(_named(("redis_url",)) + " (its password)")
    return plain, secrets


def _embedded_password(settings: Settings) -> bool:
    path = password_file(settings.data_dir)
    try:
        password = urlsplit(settings.redis_url).password
    except ValueError:
        return False
    return bool(password) and path.is_file() and unquote(password or "") == path.read_text().strip()


def by_variable(plain: dict[str, Any]) -> dict[str, str]:
    """Exported settings as the variables that set them: {"SMTP_HOST": "mail.example", "WORKERS": "2", …}."""
    out: dict[str, str] = {}
    for name, value in plain.items():
        if isinstance(value, dict) and name in Settings.model_fields and isinstance(Settings.model_fields[name].default, BaseModel):
            for field, inner in value.items():
                out[str(env_name((name, field))[0])] = _text(inner)
        else:
            out[name.upper()] = _text(value)
    return out


def differences(backup: dict[str, Any], here: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(variable, the backup's value, this machine's) for every exported setting that differs."""
    before, now = by_variable(backup), by_variable(here)
    return [(name, before.get(name, "(unset)"), now.get(name, "(unset)")) for name in sorted(before.keys() | now.keys())
            if before.get(name) != now.get(name)]


def _plain(value: Any, loc: tuple[str, ...], secrets: list[str]) -> Any:
    if isinstance(value, (SecretStr, SecretBytes)):
        secrets.append(_named(loc))
        return _LEFT_OUT
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        # an unset secret is left out too: only its absence would differ between two machines
        return _kept({name: _LEFT_OUT if getattr(value, name) is None and "Secret" in repr(field.annotation)
                      else _plain(getattr(value, name), (*loc, name), secrets) for name, field in fields.items()})
    if isinstance(value, dict):
        return _kept({str(k): _plain(v, (*loc, str(k)), secrets) for k, v in value.items()})
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v, loc, secrets) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, str) and "://" in value:
        return _without_password(value, loc, secrets)
    return value


def _kept(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not _LEFT_OUT}


def _without_password(url: str, loc: tuple[str, ...], secrets: list[str]) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    secrets.append(f"{_named(loc)} (its password)")
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def _named(loc: tuple[str, ...]) -> str:
    variable, *inside = env_name(loc)
    return f"{variable} ({'.'.join(map(str, inside))})" if inside else str(variable)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
