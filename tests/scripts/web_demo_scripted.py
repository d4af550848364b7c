"""scripts/web_demo.py with a scripted model, for the tool-turn tests; run it as the demo is run:

    streamlit run tests/scripts/web_demo_scripted.py -- FLAGS

Only the demo's generate() (prompt text → reply pieces) is replaced, and only for the questions in SCRIPT: the page
still loads the model, builds the prompt with the chat template (tools, tool calls, tool results, thinking switch),
parses the reply, runs the tools and shows everything itself; any other question goes to the real model. A random
tiny model never writes a tool call, so this stands in for one that learned to.

The scripted model reads only its prompt: the reply it gives is the step of its question's script that follows the
replies already in the prompt, with RESULT replaced by the last <tool_response> of this question. It gives NO_TOOLS
when the prompt offers no tools, and thinks (THOUGHT, then </think>) when the prompt opened a think block.
"""
import importlib.util
import os
import re
import sys

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scripts",
                   "web_demo.py")
MODULE = "web_demo_under_test"


def call(name: str, arguments: str) -> str:
    return f'<tool_call>{{"name": "{name}", "arguments": {arguments}}}</tool_call>'


CALC_QUESTION, CALC_ANSWER = "What is 6 times 7?", "6 times 7 is RESULT."
LOOKUP_QUESTION, LOOKUP_ANSWER = "Where was Ada Lin born?", "Ada Lin was born in RESULT."
BROKEN_QUESTION, BROKEN_REPLY = "Call a tool badly", '<tool_call>{"name": "calculator", "arguments": }</tool_call>'
LOOP_QUESTION = "Keep calling tools"
SCRIPT = {
    CALC_QUESTION: [call("calculator", '{"expression": "6*7"}'), CALC_ANSWER],
    LOOKUP_QUESTION: [call("lookup_person", '{"name": "Ada Lin", "attribute": "birth_city"}'), LOOKUP_ANSWER],
    BROKEN_QUESTION: [BROKEN_REPLY],
    LOOP_QUESTION: [call("calculator", '{"expression": "1+1"}')],  # its last step repeats: it never stops calling
}
THOUGHT, NO_TOOLS = "A tool knows this.", "I have no tools to answer that."
_QUESTION = re.compile(r"<\|im_start\|>user\n(?!<tool_response>)(.*?)<\|im_end\|>", re.S)


def scripted_reply(prompt: str) -> str | None:
    """The scripted model's reply to a prompt (None: not a scripted question)."""
    questions = list(_QUESTION.finditer(prompt))
    if not questions or questions[-1][1] not in SCRIPT:
        return None
    steps, after = SCRIPT[questions[-1][1]], prompt[questions[-1].start():]
    if "# Tools" not in prompt:
        reply = NO_TOOLS
    else:
        done = after.count("<|im_start|>assistant") - 1  # the replies this question already has
        results = re.findall(r"<tool_response>(.*?)</tool_response>", after, re.S)
        reply = steps[min(done, len(steps) - 1)].replace("RESULT", results[-1] if results else "?")
    if prompt.endswith("<think>\n"):
        reply = f"{THOUGHT}\n</think>\n{reply}"
    return reply


def scripted(real_generate):
    def generate(model, tokenizer, text, **sampling):
        reply = scripted_reply(text)
        if reply is None:
            return real_generate(model, tokenizer, text, **sampling)
        return (reply[i:i + 3] for i in range(0, len(reply), 3))  # streamed in pieces, tags split across them
    return generate


def demo_module():
    """scripts/web_demo.py as a module, its generate() scripted (loaded once per process: the page reruns this file)."""
    demo = sys.modules.get(MODULE)
    if demo is None:
        spec = importlib.util.spec_from_file_location(MODULE, APP)
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)
        demo.generate = scripted(demo.generate)
        sys.modules[MODULE] = demo
    return demo


if __name__ == "__main__":
    demo_module().main()
