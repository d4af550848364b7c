"""The Streamlit chat page: driven headless by Streamlit's AppTest, then for real in Chromium through Selenium."""
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

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = os.path.join(REPO, "scripts", "web_demo.py")
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


@pytest.mark.slow
def test_real_browser_shows_the_streamed_answer(demo, tmp_path):
    if not (shutil.which("chromium") and os.path.exists("/usr/bin/chromedriver")):
        pytest.skip("chromium / chromedriver not installed (scripts/test.sh installs them with apt-get)")
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (tmp_path / "streamlit.log").open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", APP, "--server.headless", "true",
                                   "--server.port", str(port), "--server.address", "127.0.0.1",
                                   "--browser.gatherUsageStats", "false", "--", *demo], cwd=REPO, stdout=log,
                                  stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    options = webdriver.ChromeOptions()
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = None
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
        box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']"))
        box.send_keys(QUESTION, Keys.ENTER)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']")) == 2
                   and ANSWER in d.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']")[1].text)
        driver.save_screenshot(str(tmp_path / "web_demo.png"))
        assert QUESTION in driver.find_element(By.TAG_NAME, "body").text
    finally:
        if driver:
            driver.quit()
        server.terminate()
        server.wait(10)

