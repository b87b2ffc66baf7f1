"""Where the photo library lives: outside the checkout by default, an old library in the
checkout is kept in use rather than silently dropped, and `git clean -fdx` cannot delete it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from imgtag_dev.paths import REPO_ROOT, choose_data_dir, protect_from_git_clean, user_data_dir
from imgtag_dev.stack import StackSettings


def test_the_default_library_lives_outside_the_checkout(monkeypatch) -> None:
    monkeypatch.delenv("IMGTAG_DATA_DIR", raising=False)
    assert not user_data_dir().resolve().is_relative_to(REPO_ROOT)
    if os.geteuid() == 0:
        assert user_data_dir() == Path("/var/lib/imgtag")
    else:
        assert user_data_dir() == Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "imgtag"
    monkeypatch.setenv("IMGTAG_DATA_DIR", "/srv/photos")
    assert StackSettings().data_dir == Path("/srv/photos")


def test_a_library_left_in_the_checkout_stays_in_use_until_the_user_moves_it(tmp_path: Path) -> None:
    checkout_dir, user_dir = tmp_path / "checkout" / ".data", tmp_path / "home" / "imgtag"
    assert choose_data_dir(checkout_dir, user_dir) == user_dir  # a new user
    checkout_dir.mkdir(parents=True)
    assert choose_data_dir(checkout_dir, user_dir) == checkout_dir  # upgraded, not moved yet
    user_dir.mkdir(parents=True)
    assert choose_data_dir(checkout_dir, user_dir) == user_dir  # moved (imgtag run mentions the old one)


def _checkout_with_library(root: Path) -> Path:
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "--quiet", str(root)], check=True)
    (root / ".gitignore").write_text("/.data/\n")
    subprocess.run([*git, "add", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "checkout"], check=True)
    photo = root / ".data" / "s3" / "photo.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"\xff\xd8 a photo")
    return photo


def test_git_clean_fdx_leaves_a_protected_library_alone(tmp_path: Path) -> None:
    unprotected = _checkout_with_library(tmp_path / "plain")
    subprocess.run(["git", "-C", str(tmp_path / "plain"), "clean", "-fdxq"], check=True)
    assert not unprotected.exists()  # what happens to a library in the checkout without the guard

    photo = _checkout_with_library(tmp_path / "guarded")
    protect_from_git_clean(tmp_path / "guarded" / ".data")
    protect_from_git_clean(tmp_path / "guarded" / ".data")  # a second start changes nothing
    subprocess.run(["git", "-C", str(tmp_path / "guarded"), "clean", "-fdxq"], check=True)
    assert photo.read_bytes() == b"\xff\xd8 a photo"
