"""Account management by a logged-in user (the dashboard's ``/users`` page): who may change
which account, the change itself (:class:`monitor.users.UserStore`) and its audit record.

Rules (:func:`refusal`), on top of the role's ``users`` permission:

- nobody disables, changes the role of, or resets the password of their own account here
  (no lock-out of the last administrator; a stolen session cannot take the account over);
- only an administrator creates an administrator, or changes an administrator's account
  (a charge nurse cannot raise anyone, herself included, to admin).

Every change is one operator action in the audit chain: ``user_added``,
``user_password_set``, ``user_role_set``, ``user_disabled``, ``user_enabled``,
``user_unlocked``, ``user_sessions_ended`` (``detail``: the account, and the role before
and after for a role change).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.users import User, UserError, UserStore

__all__ = ["NotPermitted", "UserAdmin", "refusal"]

Audit = Callable[..., None]  # Monitor.audit(user, action, detail=...)

_OWN = {"role": "change the role of", "disable": "disable", "password": "reset the password of"}


class NotPermitted(UserError):
    """The acting user may not make this change (an HTTP API answers 403)."""


def refusal(actor: User, action: str, target: User | None, role: str | None = None) -> str | None:
    """Why ``actor`` may not do ``action`` ("add", "password", "role", "disable", "enable",
    "unlock", "end_sessions") to ``target`` (None: a new account) giving it ``role``; None
    when allowed."""
    if "users" not in actor.permissions:
        return f"your role ({actor.role}) may not manage accounts"
    if target is not None and target.username == actor.username and action in _OWN:
        how = " (use `chairside user passwd`)" if action == "password" else " (ask another administrator)"
        return f"you cannot {_OWN[action]} your own account here{how}"
    if actor.role != "admin" and (role == "admin" or (target is not None and "admin" in (
            target.role, target.site_role))):  # (PostgreSQL: an admin of the site or of this bay)
        return "only an administrator may create or change an administrator account"
    return None


class UserAdmin:
    """The account changes a logged-in user may make, each checked and audited."""

    def __init__(self, users: UserStore, audit: Audit, **context: Any) -> None:
        self.users = users
        self.audit = audit
        self.context = context  # added to each audit record's detail (e.g. remote address)

    def _check(self, by: str, action: str, username: str | None, role: str | None = None) -> User | None:
        actor = self.users.get(by)
        if actor is None or actor.disabled:
            raise NotPermitted(f"{by!r} is not an enabled account")
        target = self.users.require(username) if username is not None else None
        why = refusal(actor, action, target, role)
        if why is not None:
            raise NotPermitted(why)
        return target

    def _record(self, by: str, action: str, user: User, **detail: Any) -> User:
        self.audit(by, action, detail={**self.context, "username": user.username, **detail})
        return user

    def add(self, by: str, username: str, role: str, password: str) -> User:
        self._check(by, "add", None, role)
        u = self.users.add(username, role, password)
        return self._record(by, "user_added", u, role=u.role)

    def set_password(self, by: str, username: str, password: str) -> User:
        self._check(by, "password", username)
        return self._record(by, "user_password_set", self.users.set_password(username, password))

    def set_role(self, by: str, username: str, role: str) -> User:
        target = self._check(by, "role", username, role)
        assert target is not None
        if target.site_role == role:  # (PostgreSQL: the site default; a bay's own role stays)
            raise UserError(f"{username} already has the role {role}")
        u = self.users.set_role(username, role)
        return self._record(by, "user_role_set", u, old_role=target.site_role, role=u.site_role)

    def set_disabled(self, by: str, username: str, disabled: bool) -> User:
        target = self._check(by, "disable" if disabled else "enable", username)
        assert target is not None
        if target.disabled == disabled:
            raise UserError(f"{username} is already {'disabled' if disabled else 'enabled'}")
        u = self.users.set_disabled(username, disabled)
        return self._record(by, "user_disabled" if disabled else "user_enabled", u)

    def unlock(self, by: str, username: str) -> tuple[User, int]:
        """Forget the account's failed logins: the account, and how many there were."""
        self._check(by, "unlock", username)
        failures = self.users.unlock(username)
        return self._record(by, "user_unlocked", self.users.require(username), failures=failures), failures

    def end_sessions(self, by: str, username: str) -> tuple[User, int]:
        """End every login session of the account: the account, and how many were open."""
        self._check(by, "end_sessions", username)
        ended = self.users.end_sessions(username)
        return self._record(by, "user_sessions_ended", self.users.require(username), sessions=ended), ended
