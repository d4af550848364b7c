"""The Streamlit chat page: driven headless by Streamlit's AppTest, then for real in Chromium through Selenium.

Tool turns run the page through web_demo_scripted.py: the demo itself with its generate() scripted for a few
questions (a random tiny model never writes a tool call); prompts, parsing, tools and display are the page's own.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import torch

from model.hf_convert import save_native
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from model.streaming import TextStream
from model.tokenizer import load_tokenizer
from model.weights import load_native
from web_demo_scripted import (BROKEN_REPLY, BROKEN_QUESTION, CALC_ANSWER, CALC_QUESTION, LOOKUP_ANSWER,
                               LOOKUP_QUESTION, LOOP_QUESTION, NO_TOOLS, THOUGHT, demo_module)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = os.path.join(REPO, "scripts", "web_demo.py")
SCRIPTED = os.path.join(REPO, "tests", "scripts", "web_demo_scripted.py")
ADA = {"name_zh": "林艾达", "name_en": "Ada Lin", "birth_city": {"zh": "杭州", "en": "Hangzhou"}}
CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=600)
QUESTION, ANSWER = "北京在哪里？", "北京在中国。"


@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny_tokenizer_dir):
    """The flags after `--`, and the reply the page should show. A random model only echoes newlines, so this one
    is first taught one answer (a few hundred milliseconds of Adam): the page then has visible words to stream."""
    tok = load_tokenizer(tiny_tokenizer_dir)
    prompt = tok.encode(tok.apply_chat_template([{"role": "user", "content": QUESTION}], tokenize=False,
                                                add_generation_prompt=True), add_special_tokens=False)
    x = torch.tensor([prompt + tok.encode(ANSWER, add_special_tokens=False) + [tok.eos_token_id]])
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig(**CONFIG))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(100):
        model(x, labels=x).loss.backward()
        opt.step()
        opt.zero_grad()
    out = tmp_path_factory.mktemp("demo")
    save_native(model, str(out / "full_sft_32.pth"))
    model = load_native(str(out / "full_sft_32.pth"), MiniMindConfig(**CONFIG))  # as the page will hold it
    assert "".join(TextStream(model, tok, torch.tensor([prompt]), max_new_tokens=16, temperature=0)) == ANSWER
    return ["--out_dir", str(out), "--tokenizer_dir", tiny_tokenizer_dir, "--num_attention_heads", "4",
            "--temperature", "0", "--max_new_tokens", "16"]


def test_chat_turn_regenerate_and_clear(demo, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setattr(sys, "argv", ["web_demo.py", *demo])  # what `streamlit run ... -- flags` sets
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception and at.selectbox[0].value == "full_sft · 32×2"  # size read off the checkpoint
    at.chat_input[0].set_value(QUESTION).run()
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert at.chat_message[1].markdown[0].value == ANSWER
    at.sidebar.button[1].click().run()  # regenerate: the same greedy answer replaces the old one
    assert [m.markdown[0].value for m in at.chat_message] == [QUESTION, ANSWER]
    at.sidebar.radio[0].set_value("English").run()
    at.sidebar.button[0].click().run()  # clear
    assert not at.exception and len(at.chat_message) == 0 and at.title[0].value == "Chat with MiniMind"


def test_no_model_says_how_to_get_one(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setattr(sys, "argv", ["web_demo.py", "--out_dir", str(tmp_path)])
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception and "quickstart.py" in at.warning[0].value and str(tmp_path) in at.warning[0].value


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    """A world.json whose directory (not its people) knows Ada Lin: lookup_person reads both."""
    out = tmp_path_factory.mktemp("world")
    (out / "world.json").write_text(json.dumps({"people": [], "directory": [ADA]}), encoding="utf-8")
    return str(out)


def scripted_page(argv, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setattr(sys, "argv", ["web_demo_scripted.py", *argv])
    at = AppTest.from_file(SCRIPTED, default_timeout=120).run()
    assert not at.exception
    at.sidebar.radio[0].set_value("English").run()  # labels to assert on
    return at


def ask(at, question):
    at.chat_input[0].set_value(question).run()
    assert not at.exception
    assert at.chat_message[-2].name == "user" and at.chat_message[-2].markdown[0].value == question
    return at.chat_message[-1]


def test_tool_turn_shows_thinking_calls_results_and_answer(demo, world_dir, monkeypatch):
    at = scripted_page([*demo, "--world_dir", world_dir], monkeypatch)
    tools = at.toggle(key="tools")
    assert not tools.value and not tools.disabled  # off until switched on
    listed = at.sidebar.markdown[-1].value
    assert all(f"`{name}`" in listed for name in ("calculator", "weekday", "lookup_person"))
    assert ask(at, CALC_QUESTION).markdown[0].value == NO_TOOLS  # tools off: the prompt offers none

    at.toggle(key="tools").set_value(True).run()
    at.radio(key="thinking").set_value("on").run()
    ask(at, CALC_QUESTION)
    for redraw in (False, True):  # as streamed, then as drawn from the session's history on a rerun
        if redraw:
            at.run()
        turn = at.chat_message[3]
        assert len(turn.expander) == 2  # the reply with the call and the answer each thought first, shown folded
        assert all(e.label == "Thinking" and not e.proto.expanded and e.markdown[0].value == THOUGHT
                   for e in turn.expander)
        assert [c.value for c in turn.caption] == [":material/build: Tool call · `calculator`", "↳ Tool result"]
        assert [c.value for c in turn.code] == ['{"expression": "6*7"}', "42"]
        assert turn.markdown[-1].value == CALC_ANSWER.replace("RESULT", "42")
    roles = [m["role"] for m in at.session_state["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "tool", "assistant"]

    at.sidebar.button[1].click().run()  # regenerate: the whole tool turn is redone, not appended to
    assert [m["role"] for m in at.session_state["messages"]] == roles
    assert [c.value for c in at.chat_message[3].code] == ['{"expression": "6*7"}', "42"]

    at.radio(key="thinking").set_value("off").run()
    turn = ask(at, LOOKUP_QUESTION)  # lookup_person finds a directory-only person of --world_dir
    assert not turn.expander
    assert [c.value for c in turn.code] == ['{"name": "Ada Lin", "attribute": "birth_city"}', "Hangzhou"]
    assert turn.markdown[-1].value == LOOKUP_ANSWER.replace("RESULT", "Hangzhou")

    turn = ask(at, BROKEN_QUESTION)  # malformed call: nothing runs, the raw text is the answer
    assert not turn.code and turn.markdown[0].value == BROKEN_REPLY.replace("<", "\\<")
    assert turn.caption[0].value.startswith("malformed tool call, not run (tool call is not valid JSON")

    turn = ask(at, LOOP_QUESTION)  # a model that never stops calling: --max_turns replies, then a note
    assert [c.value for c in turn.code] == ['{"expression": "1+1"}', "2"] * 3
    assert turn.caption[-1].value == "stopped calling tools: 3 replies per question at most"
    at.run()
    assert not at.exception and at.chat_message[-1].caption[-1].value == turn.caption[-1].value


def test_tools_switch_off_without_tool_tokens(demo, no_tool_tokenizer_dir, monkeypatch):
    """A tokenizer without the tool tokens (as MiniMind2's): the switch is disabled, with the reason beside it."""
    argv = [*demo]
    argv[argv.index("--tokenizer_dir") + 1] = no_tool_tokenizer_dir
    at = scripted_page(argv, monkeypatch)
    tools = at.toggle(key="tools")
    assert tools.disabled and not tools.value
    note = at.sidebar.caption[0].value
    assert note.startswith("this model cannot use tools:") and "tool_call" in note
    assert ask(at, QUESTION).markdown[0].value == ANSWER  # chatting still works


def test_replies_become_messages_and_the_window_starts_at_a_question():
    page = demo_module()
    call = '<tool_call>{"name": "calculator", "arguments": {"expression": "1+1"}}</tool_call>'
    assert page.reply_message(f"<think>\nhm\n</think>\n{call}", True) == {
        "role": "assistant", "reasoning_content": "hm", "content": "",
        "tool_calls": [{"type": "function", "function": {"name": "calculator", "arguments": {"expression": "1+1"}}}]}
    assert page.reply_message(f"x {call}", False) == {"role": "assistant", "content": f"x {call}"}  # tools off
    assert page.reply_message("<think>\nstill thinking", True) == {  # cut off by the length limit
        "role": "assistant", "reasoning_content": "still thinking", "content": "", "unfinished": True}
    chat = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "", "tool_calls": [{}]},
            {"role": "tool", "content": "2"}, {"role": "assistant", "content": "a1", "reasoning_content": "t1"},
            {"role": "user", "content": "q2"}, {"role": "assistant", "content": "", "tool_calls": [{}],
                                                "reasoning_content": "t2"},
            {"role": "tool", "content": "4", "limit": 3}]  # limit: shown only, never in a prompt
    assert page.window(chat, 0) == [chat[4], chat[5], {"role": "tool", "content": "4"}]  # this turn's thinking kept
    kept = page.window(chat, 2)  # two messages back would start inside q1's tool round: it starts at q2
    assert kept[0] == chat[4]
    kept = page.window(chat, 4)  # q1's turn whole, its thinking left out
    assert kept[0] == chat[0] and kept[3] == {"role": "assistant", "content": "a1"} and kept[5]["reasoning_content"]


@pytest.mark.slow
def test_real_browser_shows_the_streamed_answer_and_a_tool_turn(demo, tmp_path):
    """The page served by streamlit, in Chromium: the real model's streamed answer, then with tools and thinking
    switched on in the sidebar, a scripted tool turn (web_demo_scripted.py: other questions reach the real model)."""
    if not (shutil.which("chromium") and os.path.exists("/usr/bin/chromedriver")):
        pytest.skip("chromium / chromedriver not installed (scripts/test.sh installs them with apt-get)")
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (tmp_path / "streamlit.log").open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", SCRIPTED, "--server.headless", "true",
                                   "--server.port", str(port), "--server.address", "127.0.0.1",
                                   "--browser.gatherUsageStats", "false", "--", *demo], cwd=REPO, stdout=log,
                                  stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    options = webdriver.ChromeOptions()
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = None

    def messages(d):
        return d.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']")

    def send(question):
        box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']"))
        box.send_keys(question, Keys.ENTER)

    try:
        driver = webdriver.Chrome(service=webdriver.ChromeService("/usr/bin/chromedriver"), options=options)
        deadline = time.time() + 60
        while True:  # the page loads once the server listens
            try:
                driver.get(f"http://127.0.0.1:{port}")
                break
            except Exception:
                assert time.time() < deadline and server.poll() is None, (tmp_path / "streamlit.log").read_text()
                time.sleep(0.5)
        wait = WebDriverWait(driver, 90)
        send(QUESTION)
        wait.until(lambda d: len(messages(d)) == 2 and ANSWER in messages(d)[1].text)
        assert QUESTION in driver.find_element(By.TAG_NAME, "body").text

        driver.find_element(By.CSS_SELECTOR, ".st-key-tools label").click()  # tools on
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".st-key-tools input").is_selected())
        driver.find_elements(By.CSS_SELECTOR, ".st-key-thinking [data-testid='stRadioOption']")[1].click()  # 开
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".st-key-thinking input")[1].is_selected())
        send(CALC_QUESTION)
        answer = CALC_ANSWER.replace("RESULT", "42")
        wait.until(lambda d: len(messages(d)) == 4 and answer in messages(d)[3].text)
        turn = messages(driver)[3]
        # the call's arguments and result are code blocks that can render a moment after the answer's text
        shown = ("工具调用 · calculator", '{"expression": "6*7"}', "工具结果", "42", "思考过程")
        try:
            wait.until(lambda d: all(s in messages(d)[3].text for s in shown))
        except TimeoutException:
            raise AssertionError(f"not all of {shown} shown in the tool turn: {messages(driver)[3].text!r}") from None
        folds = turn.find_elements(By.CSS_SELECTOR, "[data-testid='stExpander'] details")
        assert len(folds) == 2 and not any(f.get_attribute("open") for f in folds)  # thinking folded
        assert THOUGHT not in turn.text
        folds[0].find_element(By.TAG_NAME, "summary").click()
        wait.until(lambda d: THOUGHT in messages(d)[3].text)
        driver.save_screenshot(str(tmp_path / "web_demo_tools.png"))

        send(BROKEN_QUESTION)  # the raw text of a malformed call, tags and all, is the answer
        wait.until(lambda d: len(messages(d)) == 6 and BROKEN_REPLY in messages(d)[5].text)
    finally:
        if driver:
            driver.quit()
        server.terminate()
        server.wait(10)
