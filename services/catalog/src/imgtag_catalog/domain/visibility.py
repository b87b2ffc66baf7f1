"""Who sees and who changes an asset.

A user sees their own assets and those their owners shared with the instance; they change only
their own. Admins (signed in with an access token) see and change everything. An API key reaches
only its owner's own assets, never what others shared: a key may sit in a public web page, and
"shared with the instance" means signed-in people, not the internet. What a caller may not see
is NOT_FOUND, exactly like an asset that does not exist, so ids reveal nothing."""

from __future__ import annotations

from dataclasses import dataclass

from imgtag_catalog.domain.models import AssetRecord, Visibility
from imgtag_common.auth import CredentialKind, Principal
from imgtag_common.errors import NotFound, PermissionDenied


@dataclass(frozen=True)
class ViewScope:
    """Which assets a query may return: everything (admins), or `owner`'s plus, optionally,
    those shared with the instance."""

    owner: str | None
    include_shared: bool


def view_scope(principal: Principal) -> ViewScope:
    if principal.is_admin:
        return ViewScope(owner=None, include_shared=True)
    return ViewScope(owner=principal.user, include_shared=principal.credential is not CredentialKind.API_KEY)


def can_see(principal: Principal, asset: AssetRecord) -> bool:
    scope = view_scope(principal)
    return (
        scope.owner is None
        or asset.owner == scope.owner
        or (scope.include_shared and asset.visibility is Visibility.INSTANCE)
    )


def require_visible(principal: Principal, asset: AssetRecord | None, name: str) -> AssetRecord:
    if asset is None or not can_see(principal, asset):
        raise NotFound(f"{name} does not exist", reason="ASSET_NOT_FOUND")
    return asset


def require_changeable(principal: Principal, asset: AssetRecord | None, name: str) -> AssetRecord:
    """Visible and the caller's own (or the caller is an admin)."""
    asset = require_visible(principal, asset, name)
    if not principal.is_admin and asset.owner != principal.user:
        raise PermissionDenied(f"{name} belongs to someone else; only its owner can change it", reason="NOT_OWNER")
    return asset
