"""A MathML mini-language for the formulas of the report's model section:
one function per element (``mi``, ``mo``, ``mn``, ``mtext``, ``mrow``, ``sub``,
``sup``), ``fn`` for a function application and ``math`` for a displayed formula.
Text is escaped; the browser renders the result (no MathJax, no script)."""

from __future__ import annotations

import html


def mrow(*items: str) -> str:
    return "<mrow>" + "".join(items) + "</mrow>"


def mi(name: str) -> str:
    return f"<mi>{html.escape(name)}</mi>"


def mo(op: str) -> str:
    return f"<mo>{html.escape(op)}</mo>"


def mn(value: str) -> str:
    return f"<mn>{html.escape(value)}</mn>"


def mtext(text: str) -> str:
    return f"<mtext>{html.escape(text)}</mtext>"


SPACE = '<mspace width="1.2em"></mspace>'


def sub(base: str, sub: str) -> str:
    return f"<msub>{base}{sub}</msub>"


def sup(base: str, sup: str) -> str:
    return f"<msup>{base}{sup}</msup>"


def fn(name: str, *args: str) -> str:
    inner = [args[0]]
    for arg in args[1:]:
        inner += [mo(","), arg]
    return mrow(mi(name) if len(name) == 1 else mtext(name), mo("("), *inner, mo(")"))


def math(*items: str) -> str:
    return '<div class="formula"><math>' + mrow(*items) + "</math></div>"

