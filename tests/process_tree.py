"""Test helper: the processes below a process (from /proc) and whether one still runs."""

from __future__ import annotations

from pathlib import Path


def process_table() -> dict[int, list[tuple[int, str]]]:
    """parent pid -> [(pid, command line)] of every process."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append((int(entry.name), argv))
    return children


def descendants(pid: int) -> dict[int, str]:
    """pid -> command line of every process below pid."""
    table, found, todo = process_table(), {}, [pid]
    while todo:
        for child, argv in table.get(todo.pop(), []):
            found[child] = argv
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
