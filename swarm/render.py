"""How a run looks in a terminal: the stats block (the seed's, done right) and a live bar."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def stats_block(st: dict[str, Any]) -> Group:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    t.add_row("Run", f"{st['run_id']}  [{st['state']}]  model {st['model']}")
    t.add_row("Completed", f"{st['completed']:,} / {st['total']:,}"
              f"   (parsed {st['parsed']:,})")
    t.add_row("Failed", f"{st['failed']:,}")
    t.add_row("Skipped", f"{st['skipped']:,}")
    t.add_row("In flight", f"{st['in_flight']:,}   queued {st['queued']:,}")
    t.add_row("Tokens", f"{st['tokens']:,}  ({st['prompt_tokens']:,} in, "
              f"{st['completion_tokens']:,} out)")
    t.add_row("Cost", f"${st['cost_usd']:.4f} / ${st['budget_usd']:.2f}   (Kimi "
              f"${st['cost_kimi_usd']:.4f}, Claude ${st['cost_claude_usd']:.4f}, reserved "
              f"${st['reserved_usd']:.4f})")
    t.add_row("Est. revenue", f"€{st['est_revenue']:,.0f}  (parsed answers only)")
    t.add_row("ROI", f"{st['roi']:,.1f}x" if st["roi"] is not None else "—")
    t.add_row("Rate", f"{st['rate_per_s']:.2f} tasks/s")
    t.add_row("Elapsed", f"{_dur(st['elapsed_s'])}   ETA {_dur(st['eta_s'])}")
    t.add_row("Reviews", f"{st['orchestrations']}")
    t.add_row("429s", f"{st['rate_limited']}   ({st['cooldowns']} cooldowns, "
              f"{st['cooldown_s']:.0f} s paused)   duplicates {st['duplicates']}   "
              f"unanswered {st['unanswered']}")
    cats = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    cats.add_column("category")
    cats.add_column("completed", justify="right")
    cats.add_column("weight", justify="right")
    for name, n in st["by_category"].items():
        cats.add_row(name, f"{n:,}", f"{st['weights'].get(name, 0):.2f}")
    return Group(Text("Swarm stats", style="bold underline"), t, Text(""), cats)


def progress_line(st: dict[str, Any]) -> str:
    done = st["completed"] + st["failed"] + st["skipped"]
    return (f"{done:,}/{st['total']:,} done · {st['failed']:,} failed · {st['in_flight']} in flight"
            f" · {st['rate_per_s']:.1f}/s · ETA {_dur(st['eta_s'])} · ${st['cost_usd']:.4f}"
            f" of ${st['budget_usd']:.2f} · {st['state']}")


def review_line(rec: dict[str, Any]) -> str:
    """One line about a review: who decided, what it cost, and whether the mix changed."""
    head = f"Review {rec['seq']} ({rec['source']}, ${rec['cost_usd']:.4f})"
    if not rec["applied"]:
        return f"{head}: mix unchanged — {rec['rejected'] or 'no decision'}; `swarm insights`"
    return f"{head}: new weights applied (the column above); `swarm insights`"
