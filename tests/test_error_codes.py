"""Every error code the server can answer has a French and an English text (issue 14).

Pages showed the server's English message inside French sentences. They now show
`err_<code>` from web/static/i18n.js; this finds every code in the product's source
(not a list kept by hand: a new `code="..."` anywhere fails here until it is registered
in rules.errors.ERROR_CODES) and checks, in the browser, that both languages have it.

Where a code is written in the source: a `code=` / `*_code=` keyword or parameter default,
an assignment to `code` (class attribute or variable, every string in its value: the
status-to-code table of web.app), the keys of runtime.connections' refusal messages, and
the code argument of the calls that make an error (SINKS).
"""

from __future__ import annotations

import ast
from typing import Any

import pytest

from rules.errors import ERROR_CODES
from runtime.settings import Settings
from tests.helpers import web_server
from tests.test_public_apis import ROOT, product_packages

# Calls that take an error code, and at which position.
# error_payload: a feed socket's error frame (`invalid_message` had no text in either
# language, unseen here).
SINKS = {"Rejection": 0, "SubscriptionError": 0, "error_body": 0, "error_payload": 0,
         "refusal_response": 0, "error_response": 1, "_refuse": 1, "decode_body": 2}


def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def codes_in(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg and node.arg.endswith("code"):
            found |= _strings(node.value) if isinstance(node.value, ast.Constant) else set()
        elif isinstance(node, ast.arguments):
            named = [*node.posonlyargs, *node.args][-len(node.defaults):] if node.defaults else []
            pairs = [*zip(named, node.defaults, strict=True),
                     *zip(node.kwonlyargs, node.kw_defaults, strict=True)]
            for arg, default in pairs:
                if arg.arg.endswith("code") and isinstance(default, ast.Constant):
                    found |= _strings(default)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {_name(t) for t in targets}
            if node.value is not None and "code" in names:
                found |= _strings(node.value)
            if node.value is not None and "_MESSAGES" in names and isinstance(node.value, ast.Dict):
                found |= {k.value for k in node.value.keys
                          if isinstance(k, ast.Constant) and isinstance(k.value, str)}
        elif isinstance(node, ast.Call) and _name(node.func) in SINKS:
            position = SINKS[_name(node.func)]
            if len(node.args) > position and isinstance(node.args[position], ast.Constant):
                found |= _strings(node.args[position])
    return found


def emitted_codes() -> set[str]:
    found: set[str] = set()
    for package in product_packages():
        for path in sorted((ROOT / package).rglob("*.py")):
            found |= codes_in(ast.parse(path.read_text(), str(path)))
    return found


def test_every_code_in_the_source_is_registered() -> None:
    found = emitted_codes()
    assert len(found) > 40  # the scan sees the codes at all
    assert found - ERROR_CODES == set(), "register these in rules.errors.ERROR_CODES"
    assert ERROR_CODES - found == set(), "no longer emitted: remove from ERROR_CODES"


def test_the_scan_finds_each_way_a_code_is_written() -> None:
    source = '''
class Gone(ApiError):
    code = "gone_a"
def f(x, blank_code: str = "gone_b"):
    raise InvalidInput("m", code="gone_c")
code = {404: "gone_d"}.get(status, "gone_e")
_MESSAGES = {"gone_f": "text"}
Rejection("gone_g", "m")
error_response(400, "gone_h", "m")
self._refuse(sink, "gone_i", "m", 1008)
decode_body(body, T, "gone_j")
'''
    assert codes_in(ast.parse(source)) == {f"gone_{c}" for c in "abcdefghij"}


@pytest.mark.browser
async def test_every_code_has_a_french_and_an_english_text(settings: Settings,
                                                            browser: Any) -> None:
    async with web_server(settings) as web:
        page = await browser.new_page()
        await page.goto(f"{web.http}/")
        texts = await page.evaluate("""async (codes) => {
          const i18n = await import("/static/i18n.js");
          const out = {};
          for (const lang of ["fr", "en"]) {
            i18n.setLang(lang);
            out[lang] = Object.fromEntries(codes.map((code) => [code, {
              key: i18n.errorKey({ code, message: "the English message" }),
              text: i18n.errorText({ code, message: "the English message" }),
            }]));
          }
          return out;
        }""", sorted(ERROR_CODES))
        fallback = {lang: (await page.evaluate("""async (lang) => {
          const i18n = await import("/static/i18n.js");
          i18n.setLang(lang);
          return i18n.errorText({ code: "no_such_code", message: "the English message" });
        }""", lang)) for lang in ("fr", "en")}
    missing = {lang: [c for c, v in texts[lang].items() if v["key"] != f"err_{c}"]
               for lang in texts}
    assert missing == {"fr": [], "en": []}
    for lang in ("fr", "en"):
        for code, value in texts[lang].items():
            text = value["text"]
            assert text.strip() and text != f"err_{code}" and "English message" not in text, \
                (lang, code)
        assert "English message" not in fallback[lang]
    assert texts["fr"]["invalid_post"]["text"] != texts["en"]["invalid_post"]["text"]
    assert fallback["fr"] != fallback["en"]
