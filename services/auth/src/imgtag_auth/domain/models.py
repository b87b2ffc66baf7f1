"""Auth domain records, independent of protobuf and SQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from imgtag_common.auth import Role

T = TypeVar("T")


class UserState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"
    DISABLED = "disabled"


class RegistrationMode(StrEnum):
    APPROVAL_REQUIRED = "approval_required"
    AUTO_APPROVE = "auto_approve"
    CLOSED = "closed"


@dataclass
class UserRecord:
    id: uuid.UUID
    username: str
    email: str  # "" only for the first admin made at start-up
    display_name: str
    password_hash: str
    role: Role
    state: UserState
    create_time: datetime
    update_time: datetime
    approve_time: datetime | None = None
    last_login_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"users/{self.id}"


@dataclass
class SessionRecord:
    """One sign-in: the family of refresh tokens that rotate from one login."""

    id: uuid.UUID
    user_id: uuid.UUID
    create_time: datetime
    expire_time: datetime
    revoke_time: datetime | None = None
    revoke_reason: str = ""


@dataclass
class RefreshTokenRecord:
    token_hash: bytes
    session_id: uuid.UUID
    create_time: datetime
    expire_time: datetime
    used_time: datetime | None = None


@dataclass
class ApiKeyRecord:
    id: uuid.UUID
    user_id: uuid.UUID
    display_name: str
    scopes: frozenset[str]
    secret_hash: bytes
    secret_prefix: str
    create_time: datetime
    expire_time: datetime | None = None
    last_use_time: datetime | None = None
    revoke_time: datetime | None = None
    restriction_filter: str = ""
    restriction_collection: str = ""

    @property
    def name(self) -> str:
        return f"users/{self.user_id}/apiKeys/{self.id}"


@dataclass
class Page(Generic[T]):
    items: list[T] = field(default_factory=list)
    next_page_token: str = ""
    total_size: int = 0
