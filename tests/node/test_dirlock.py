"""The data directory's lock: one process (one node) at a time (issue 21, defect 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from node.cli.daemon import _remove_if_ours
from node.errors import StoreError
from node.home.dirlock import LOCK_FILE, DataDirLockedError, lock_data_dir


def test_a_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    with lock_data_dir(tmp_path):
        with pytest.raises(DataDirLockedError) as caught, lock_data_dir(tmp_path):
            pass
        assert caught.value.pid == os.getpid()
        assert isinstance(caught.value, StoreError)
    with lock_data_dir(tmp_path):  # released when the block ended
        assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
    assert (tmp_path / LOCK_FILE).stat().st_mode & 0o077 == 0


@pytest.mark.slow
def test_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    script = (
        "import sys, pathlib\n"
        "from node.home.dirlock import lock_data_dir\n"
        "with lock_data_dir(pathlib.Path(sys.argv[1])):\n"
        "    print('held', flush=True); sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(DataDirLockedError) as caught, lock_data_dir(tmp_path):
        pass
    assert caught.value.pid == holder.pid
    holder.kill()  # kill -9: no cleanup runs, the kernel drops the lock
    holder.communicate(timeout=30)  # reaps it and closes its pipes
    with lock_data_dir(tmp_path):
        pass


def test_a_symlinked_lock_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StoreError), lock_data_dir(tmp_path):
        pass


def test_only_a_file_we_wrote_is_removed(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.write_text("127.0.0.1:1\n")
    theirs.write_text("127.0.0.1:2\n")
    _remove_if_ours(ours, "127.0.0.1:1\n")
    _remove_if_ours(theirs, "127.0.0.1:1\n")
    _remove_if_ours(tmp_path / "gone", "x")
    assert not ours.exists()
    assert theirs.read_text() == "127.0.0.1:2\n"
