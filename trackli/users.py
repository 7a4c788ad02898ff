"""Trackli users. Single-user mode acts as one local user; teams mode maps each sign-in email to one."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackli.config import LOCAL_USER_EMAIL, LOCAL_USER_NAME
from trackli.errors import NotFound, ValidationError
from trackli.models import User

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL.match(email) or len(email) > 320:
        raise ValidationError(f"{email!r} is not an email address")
    return email


def get_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def require(session: Session, email: str) -> User:
    user = get_by_email(session, email)
    if user is None:
        raise NotFound(f"no user {email!r}: add one with `trackli users add {email}`")
    return user


def ensure(session: Session, email: str, display_name: str = "") -> User:
    """The user with this email, created if missing (sign-in and the local user)."""
    email = normalise_email(email)
    user = get_by_email(session, email)
    if user is None:
        user = User(email=email, display_name=display_name.strip()[:200] or email.split("@")[0])
        session.add(user)
        session.flush()
    return user


def ensure_local(session: Session) -> User:
    return ensure(session, LOCAL_USER_EMAIL, LOCAL_USER_NAME)


def add(session: Session, email: str, display_name: str = "") -> User:
    if get_by_email(session, email) is not None:
        raise ValidationError(f"a user {normalise_email(email)!r} already exists")
    return ensure(session, email, display_name)


def list_all(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def resolve(session: Session, email: str | None) -> User:
    """The acting user: the local user when no email is given, otherwise an existing user."""
    return ensure_local(session) if email is None else require(session, email)


def inbox_open(session: Session, user_id: int) -> bool:
    """Is the board's inbox lane open for this person (kept per person, across tabs and devices)?"""
    return bool(session.scalar(select(User.inbox_open).where(User.id == user_id)))


def set_inbox_open(session: Session, user_id: int, is_open: bool) -> None:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    user.inbox_open = bool(is_open)
