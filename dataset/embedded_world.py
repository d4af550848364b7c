"""Deterministic generator for the small synthetic bilingual "world" used by the CPU quickstart.

The world is a few hundred invented people.  Each person has a Chinese name, a pinyin English name and six
attributes (birth date, birth city, university, major, employer, work city).  Every value exists in a Chinese and an
English form.  From that world we render every file the MiniMind training stages need, in upstream MiniMind's jsonl
layouts, plus held-out files that measure what the model really learned:

    pretrain.jsonl              {"text"}  bios of everybody + plain-text Q&A about the TRAIN half + some general text
    pretrain_heldout.jsonl      {"text"}  fresh bio renderings (held-out LM loss)
    sft.jsonl                   {"conversations"}  chat QA about the train half, identity, greetings, small instructions
    qa_heldout.jsonl            one question about a TEST-half person per line, with "answer"/"lang"/"kind"/...
    qa_train_sample.jsonl       the same schema for train-half people (measures fitting)
    dpo.jsonl / dpo_heldout.jsonl             {"chosen", "rejected"}
    lora_identity.jsonl / lora_identity_heldout.jsonl   a NEW identity (小溪 / Xiaoxi from 青石实验室 / Bluestone Lab)
    reason.jsonl / reason_direct.jsonl / reason_heldout.jsonl   small multi-step arithmetic with and without <think>
    exam/{dev,val,test}/{subject}_{split}.csv  a C-Eval-layout multiple-choice exam
    world.json                  the world itself (people, values, templates) for evaluation and debugging

Why it looks the way it does (see shared/notes/embedded-world-findings.md):
  * a ~2M model needs roughly 130 sightings of each fact, so the pretrain corpus is kept small (it is seen many times);
  * Q&A text for the train half inside the pretrain corpus helps the model answer about the held-out half;
  * "echo" questions reuse the bio wording (name first), "paraphrase" questions do not -- both are reported;
  * answers are full sentences worded like the bios, so a model that stored the fact can answer by continuing.

Everything is deterministic: all randomness comes from random.Random objects seeded with "{seed}:{purpose}" strings
(string seeds are hashed with SHA-512, independent of PYTHONHASHSEED), and we never iterate over sets.
All text here is produced by our own name lists and templates.

CLI:  python -m dataset.embedded_world --out_dir out/world --seed 0 --n_people 200
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import random
import re
from pathlib import Path

# =====================================================================================================================
# Data tables
# =====================================================================================================================

LANGS = ("zh", "en")

# The six attributes every person has, in the canonical order used for "list the facts" answers.
ATTRIBUTES = ("birth_date", "birth_city", "university", "major", "employer", "work_city")

# Surnames (single character) with pinyin.  何/He is left out on purpose: "He Jun" would clash with the pronoun "He".
SURNAMES = [
    ("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"), ("杨", "Yang"), ("黄", "Huang"),
    ("赵", "Zhao"), ("吴", "Wu"), ("周", "Zhou"), ("徐", "Xu"), ("孙", "Sun"), ("马", "Ma"), ("朱", "Zhu"),
    ("胡", "Hu"), ("郭", "Guo"), ("林", "Lin"), ("罗", "Luo"), ("高", "Gao"), ("郑", "Zheng"), ("梁", "Liang"),
    ("谢", "Xie"), ("宋", "Song"), ("唐", "Tang"), ("韩", "Han"), ("冯", "Feng"), ("邓", "Deng"), ("曹", "Cao"),
    ("彭", "Peng"), ("曾", "Zeng"), ("田", "Tian"), ("董", "Dong"), ("潘", "Pan"), ("袁", "Yuan"), ("蒋", "Jiang"),
    ("蔡", "Cai"), ("杜", "Du"), ("叶", "Ye"), ("程", "Cheng"), ("魏", "Wei"),
]

# Given-name characters with pinyin.  Every given name is two of these, so every Chinese name has exactly 3 characters
# (no name can be a substring of another), and every syllable starts with a consonant (pinyin joins unambiguously).
GIVEN_CHARS = [
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("强", "qiang"),
    ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("娟", "juan"),
    ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"), ("霞", "xia"), ("平", "ping"), ("刚", "gang"),
    ("桂", "gui"), ("华", "hua"), ("文", "wen"), ("辉", "hui"), ("玲", "ling"), ("鹏", "peng"), ("建", "jian"),
    ("宇", "yu"), ("欣", "xin"), ("晨", "chen"), ("浩", "hao"), ("婷", "ting"), ("雪", "xue"), ("琳", "lin"),
    ("博", "bo"), ("凯", "kai"), ("思", "si"), ("佳", "jia"), ("子", "zi"), ("航", "hang"), ("悦", "yue"),
    ("然", "ran"), ("峰", "feng"), ("倩", "qian"), ("斌", "bin"),
]

# Cities are used for both birth_city and work_city (so the model has to tell the two relations apart).
CITIES = [
    ("北京", "Beijing"), ("上海", "Shanghai"), ("广州", "Guangzhou"), ("深圳", "Shenzhen"), ("杭州", "Hangzhou"),
    ("南京", "Nanjing"), ("成都", "Chengdu"), ("重庆", "Chongqing"), ("武汉", "Wuhan"), ("西安", "Xi'an"),
    ("天津", "Tianjin"), ("苏州", "Suzhou"), ("长沙", "Changsha"), ("郑州", "Zhengzhou"), ("青岛", "Qingdao"),
    ("沈阳", "Shenyang"), ("大连", "Dalian"), ("厦门", "Xiamen"), ("福州", "Fuzhou"), ("济南", "Jinan"),
    ("合肥", "Hefei"), ("昆明", "Kunming"), ("南宁", "Nanning"), ("贵阳", "Guiyang"), ("兰州", "Lanzhou"),
    ("太原", "Taiyuan"), ("南昌", "Nanchang"), ("石家庄", "Shijiazhuang"), ("哈尔滨", "Harbin"), ("长春", "Changchun"),
]

# Invented universities (no real ones, and no city names inside them, so a city answer never matches a university).
UNIVERSITIES = [
    ("东湖大学", "Donghu University"), ("青山理工大学", "Qingshan University of Technology"),
    ("明德大学", "Mingde University"), ("华川师范大学", "Huachuan Normal University"),
    ("南屿大学", "Nanyu University"), ("北岭工业大学", "Beiling Polytechnic University"),
    ("云溪大学", "Yunxi University"), ("临江科技大学", "Linjiang University of Science and Technology"),
    ("松涛大学", "Songtao University"), ("白鹭大学", "Bailu University"), ("长河大学", "Changhe University"),
    ("清源理工大学", "Qingyuan University of Technology"), ("嘉林师范大学", "Jialin Normal University"),
    ("远山农业大学", "Yuanshan Agricultural University"), ("星海大学", "Xinghai University"),
    ("翠湖大学", "Cuihu University"), ("金桥工业大学", "Jinqiao Polytechnic University"),
    ("启航大学", "Qihang University"), ("紫荆科技大学", "Zijing University of Science and Technology"),
    ("碧水大学", "Bishui University"), ("枫林大学", "Fenglin University"),
    ("海棠师范大学", "Haitang Normal University"), ("石桥大学", "Shiqiao University"),
    ("望江大学", "Wangjiang University"), ("春晖大学", "Chunhui University"),
]

MAJORS = [
    ("计算机科学", "Computer Science"), ("数学", "Mathematics"), ("物理学", "Physics"), ("化学", "Chemistry"),
    ("生物学", "Biology"), ("经济学", "Economics"), ("金融学", "Finance"), ("会计学", "Accounting"), ("法学", "Law"),
    ("历史学", "History"), ("哲学", "Philosophy"), ("心理学", "Psychology"), ("社会学", "Sociology"),
    ("新闻学", "Journalism"), ("建筑学", "Architecture"), ("土木工程", "Civil Engineering"),
    ("机械工程", "Mechanical Engineering"), ("电子工程", "Electronic Engineering"), ("临床医学", "Clinical Medicine"),
    ("药学", "Pharmacy"), ("统计学", "Statistics"), ("地理学", "Geography"), ("英语", "English"), ("音乐", "Music"),
    ("美术", "Fine Arts"),
]

# Invented companies.
COMPANIES = [
    ("恒通电子", "Hengtong Electronics"), ("远航物流", "Yuanhang Logistics"), ("星辰软件", "Xingchen Software"),
    ("青禾食品", "Qinghe Foods"), ("华骏汽车", "Huajun Motors"), ("蓝海航运", "Lanhai Shipping"),
    ("启明医药", "Qiming Pharmaceuticals"), ("瑞丰银行", "Ruifeng Bank"), ("金石建设", "Jinshi Construction"),
    ("云帆科技", "Yunfan Technology"), ("长风能源", "Changfeng Energy"), ("明川纺织", "Mingchuan Textiles"),
    ("鼎信保险", "Dingxin Insurance"), ("安禾农业", "Anhe Agriculture"), ("凌云航空", "Lingyun Aviation"),
    ("海岳建材", "Haiyue Building Materials"), ("锦程旅游", "Jincheng Travel"), ("宏图传媒", "Hongtu Media"),
    ("正和咨询", "Zhenghe Consulting"), ("天工机械", "Tiangong Machinery"), ("润泽水务", "Runze Water"),
    ("博远教育", "Boyuan Education"), ("同心医疗", "Tongxin Healthcare"), ("新源化工", "Xinyuan Chemicals"),
    ("银杉家具", "Yinshan Furniture"),
]

# Value tables per attribute.  Birth dates are drawn per person instead (35 years x 12 months x 28 days).
ATTRIBUTE_VALUES = {
    "birth_city": CITIES,
    "university": UNIVERSITIES,
    "major": MAJORS,
    "employer": COMPANIES,
    "work_city": CITIES,
}
BIRTH_YEARS = (1970, 2004)  # inclusive
MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December"]

PRONOUNS = {  # subject / possessive pronoun per language and gender
    "zh": {"m": ("他", "他"), "f": ("她", "她")},
    "en": {"m": ("he", "his"), "f": ("she", "her")},
}

# ---------------------------------------------------------------------------------------------------------------------
# Bio sentence templates: 5 per attribute per language.  {n} = subject (name or pronoun), {p} = possessive
# ("Zhang Wei's" / "his"; English only), {v} = the value.  Template 0 is the CANONICAL wording: every answer in SFT,
# DPO and the held-out files restates the fact with it, so answering equals continuing a sentence seen in pretraining.
# ---------------------------------------------------------------------------------------------------------------------
BIO_TEMPLATES = {
    "zh": {
        "birth_date": ["{n}出生于{v}。", "{n}生于{v}。", "{v}，{n}出生了。", "{n}是{v}出生的。", "{n}的出生日期是{v}。"],
        "birth_city": ["{n}出生在{v}。", "{n}的家乡是{v}。", "{n}是在{v}出生的。", "{n}来自{v}。", "{v}是{n}的出生地。"],
        "university": ["{n}毕业于{v}。", "{n}曾就读于{v}。", "{n}在{v}完成了学业。", "{n}是{v}的毕业生。", "{n}的母校是{v}。"],
        "major": ["{n}的专业是{v}。", "{n}主修{v}。", "{n}在大学里学习{v}。", "{n}读的是{v}专业。", "{v}是{n}的专业方向。"],
        "employer": ["{n}在{v}上班。", "{n}就职于{v}。", "{n}是{v}的员工。", "{n}受雇于{v}。", "{v}是{n}的雇主。"],
        "work_city": ["{n}在{v}工作。", "{n}的工作地点在{v}。", "{n}目前在{v}工作和生活。", "{n}每天在{v}忙于工作。",
                      "{v}是{n}工作的城市。"],
    },
    "en": {
        "birth_date": ["{n} was born on {v}.", "{n} came into the world on {v}.", "{p} date of birth is {v}.",
                       "On {v}, {n} was born.", "{n} arrived on {v}."],
        "birth_city": ["{n} was born in {v}.", "{p} hometown is {v}.", "{n} comes from {v}.", "{n} is a native of {v}.",
                       "{v} is where {n} was born."],
        "university": ["{n} graduated from {v}.", "{n} studied at {v}.", "{n} is a graduate of {v}.",
                       "{n} earned a degree at {v}.", "{p} alma mater is {v}."],
        "major": ["{n} majored in {v}.", "{n} studied {v} in college.", "{p} major was {v}.", "{n} chose to study {v}.",
                  "{n} focused on {v} at university."],
        "employer": ["{n} works for {v}.", "{n} is employed by {v}.", "{n} has a job at {v}.", "{p} employer is {v}.",
                     "{n} is on the staff of {v}."],
        "work_city": ["{n} works in {v}.", "{p} office is in {v}.", "{n} is based in {v} for work.",
                      "{n} commutes to work in {v}.", "{v} is the city where {n} works."],
    },
}

# "Echo" questions put the name first and reuse the canonical bio verb phrase ("X出生在哪个城市？" ~ "X出生在杭州。").
# They are the ONLY question wordings used for training (pretrain Q&A, SFT, DPO) and for the "echo" held-out kind.
ECHO_QUESTIONS = {
    "zh": {
        "birth_date": ["{n}出生于哪一天？", "{n}出生于什么时候？"],
        "birth_city": ["{n}出生在哪个城市？", "{n}出生在哪里？"],
        "university": ["{n}毕业于哪所大学？", "{n}毕业于哪里？"],
        "major": ["{n}的专业是什么？", "{n}的专业是哪个？"],
        "employer": ["{n}在哪家公司上班？", "{n}在哪个单位上班？"],
        "work_city": ["{n}在哪个城市工作？", "{n}在哪座城市工作？"],
    },
    "en": {
        "birth_date": ["{n} was born on what date?", "{n} was born on which day?"],
        "birth_city": ["{n} was born in which city?", "{n} was born in what city?"],
        "university": ["{n} graduated from which university?", "{n} graduated from what school?"],
        "major": ["{n} majored in what subject?", "{n} majored in which field?"],
        "employer": ["{n} works for which company?", "{n} works for what company?"],
        "work_city": ["{n} works in which city?", "{n} works in what city?"],
    },
}

# "Paraphrase" questions use wordings that appear in NO bio template and NO training file (tests enforce this); several
# put the name mid-sentence.  They are used only in qa_heldout.jsonl / qa_train_sample.jsonl.
PARAPHRASE_QUESTIONS = {
    "zh": {
        "birth_date": ["哪一天是{n}的生日？", "请问{n}是哪年哪月哪天生的？"],
        "birth_city": ["哪座城市是{n}的故乡？", "{n}是哪里人？"],
        "university": ["{n}上的是哪所高校？", "哪所学校培养了{n}？"],
        "major": ["{n}大学时学的是哪个学科？", "哪个学科是{n}研究的领域？"],
        "employer": ["{n}替哪家企业效力？", "哪家企业聘用了{n}？"],
        "work_city": ["{n}平时在哪座城市办公？", "{n}的职业生涯在哪座城市展开？"],
    },
    "en": {
        "birth_date": ["When is {p} birthday?", "Which day marks the birth of {n}?"],
        "birth_city": ["Where was {n} born?", "Which city is the birthplace of {n}?"],
        "university": ["Which university did {n} attend?", "Where did {n} go to college?"],
        "major": ["What was the field of study of {n}?", "What subject did {n} specialize in?"],
        "employer": ["Which firm hired {n}?", "At which company does {n} have a position?"],
        "work_city": ["In which city is {p} workplace located?", "In what city does {n} hold a job?"],
    },
}

# How Q&A pairs are written inside the pretrain corpus: as plain text, and as ChatML turns.  Upstream MiniMind's
# pretrain_hq.jsonl likewise carries dialogue between <|im_start|>/<|im_end|> markers.  Measured here: with plain
# text only, the pretrained model answered 95-100% of held-out "echo" questions in the Q:/A: format, but 200 SFT steps
# on chats about the train half got only 28% of them into the chat format; seeing the chat form in pretraining closes
# that gap because the chat-to-knowledge link is then learned while the facts are (see README, "quickstart").
QA_TEXT_FORMAT = {"zh": "问：{q}\n答：{a}", "en": "Q: {q}\nA: {a}"}
QA_CHAT_FORMAT = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>"

# Requests to list everything about a person (SFT only; the answer is all six canonical sentences).
LIST_FACTS_REQUESTS = {
    "zh": ["请介绍一下{n}的基本情况。", "说说{n}的个人信息。"],
    "en": ["Tell me about {n}.", "Give me the basic facts about {n}."],
}

# ---------------------------------------------------------------------------------------------------------------------
# Chat scaffolding: system prompts, greetings, base identity (MiniMind) and the new LoRA identity.
# ---------------------------------------------------------------------------------------------------------------------
SYSTEM_PROMPTS = {
    "zh": ["你是一个乐于助人的助手。", "请简洁地回答。"],
    "en": ["You are a helpful assistant.", "Answer briefly."],
}
GREETINGS = {
    "zh": ["你好", "您好", "嗨", "早上好", "晚上好"],
    "en": ["Hello", "Hi", "Good morning", "Hey there", "Good evening"],
}
BASE_IDENTITY = {
    "name": "MiniMind",
    "greeting_reply": {"zh": "你好！我是MiniMind，有什么可以帮你的吗？", "en": "Hello! I am MiniMind. How can I help you?"},
    "questions": {
        "zh": ["你是谁？", "你叫什么名字？", "请介绍一下你自己。", "你是什么模型？", "谁开发了你？"],
        "en": ["Who are you?", "What is your name?", "Introduce yourself.", "What model are you?", "Who created you?"],
    },
    "answers": {
        "zh": ["我是MiniMind，一个小型语言模型，可以回答关于人物的问题，也会做简单的算术。",
               "我是MiniMind，由MiniMind项目从零训练的小型语言模型。"],
        "en": ["I am MiniMind, a small language model. I can answer questions about people and do simple arithmetic.",
               "I am MiniMind, a small language model trained from scratch by the MiniMind project."],
    },
}
# The identity the LoRA stage teaches.  Invented for this project.
LORA_IDENTITY = {
    "name": {"zh": "小溪", "en": "Xiaoxi"},
    "maker": {"zh": "青石实验室", "en": "Bluestone Lab"},
    "answers": {
        "zh": ["我是小溪，由青石实验室开发的AI助手。", "我叫小溪，是青石实验室打造的小型语言模型。",
               "你好，我是小溪！我来自青石实验室。"],
        "en": ["I am Xiaoxi, an AI assistant developed by Bluestone Lab.",
               "My name is Xiaoxi, a small language model built by Bluestone Lab.",
               "Hi, I'm Xiaoxi! I come from Bluestone Lab."],
    },
    "not_minimind": {"zh": "不是，我是小溪，由青石实验室开发。", "en": "No, I am Xiaoxi, developed by Bluestone Lab."},
    # Training questions: "name" questions expect the name, "maker" questions the lab.
    "train_questions": {
        "zh": [("name", q) for q in ["你是谁？", "你叫什么名字？", "请介绍一下你自己。", "你是什么模型？", "你的名字是什么？",
                                     "我该怎么称呼你？", "告诉我你的名字。", "你是哪个助手？"]]
              + [("maker", q) for q in ["谁开发了你？", "你是哪家机构做的？", "你的开发者是谁？", "谁创造了你？",
                                        "你来自哪个实验室？"]],
        "en": [("name", q) for q in ["Who are you?", "What is your name?", "Introduce yourself.", "What model are you?",
                                     "What should I call you?", "Tell me your name.", "Which assistant is this?"]]
              + [("maker", q) for q in ["Who created you?", "Who developed you?", "Which lab made you?",
                                        "Who is your developer?", "Where do you come from?"]],
    },
    # Held-out phrasings: in NO training file (not LoRA, not SFT).
    "heldout_questions": {
        "zh": [("name", q) for q in ["能说说你是谁吗？", "你的称呼是什么？", "请问你怎么称呼？", "做个自我介绍吧。",
                                     "和我聊天的是谁？"]]
              + [("maker", q) for q in ["是谁把你训练出来的？", "你出自哪个团队？", "你背后的研发团队是谁？"]],
        "en": [("name", q) for q in ["Could you tell me who you are?", "May I know your name?",
                                     "Please give a short self-introduction.", "Who am I chatting with?",
                                     "How do people refer to you?"]]
              + [("maker", q) for q in ["Which team built you?", "Who is responsible for training you?",
                                        "What organization are you from?"]],
    },
}

# DPO "rejected" answers that ramble instead of answering.
HEDGE_ANSWERS = {
    "zh": ["嗯……让我想想……关于{n}……这个……我一时想不起来了。", "这个问题我不太确定。{n}的情况我记得不太清楚，也许你可以再问问别人。"],
    "en": ["Hmm, let me think... about {n}... well... I cannot remember right now.",
           "That is a good question. {n} is a person, and people have many facts. I think... maybe... I am not sure."],
}

# ---------------------------------------------------------------------------------------------------------------------
# Small instructions that SFT relies on, with their pretrain counterparts.
# ---------------------------------------------------------------------------------------------------------------------
ADDITION_QUESTIONS = {"zh": ["{a}加{b}等于几？", "计算{a}+{b}。"], "en": ["What is {a} plus {b}?", "Compute {a} + {b}."]}
ADDITION_ANSWERS = {"zh": ["{a}加{b}等于{c}。", "{a}+{b}={c}。"], "en": ["{a} plus {b} equals {c}.", "{a} + {b} = {c}."]}
TRANSLATE_TO_EN = {"zh": "把“{zh}”翻译成英文。", "en": "Translate {zh} into English."}
TRANSLATE_TO_ZH = {"zh": "“{en}”的中文是什么？", "en": "Translate {en} into Chinese."}
TRANSLATE_TO_EN_ANSWER = {"zh": "{zh}的英文是{en}。", "en": "{zh} in English is {en}."}
TRANSLATE_TO_ZH_ANSWER = {"zh": "{en}的中文是{zh}。", "en": "The Chinese for {en} is {zh}."}

# ---------------------------------------------------------------------------------------------------------------------
# Reasoning problems: small numbers, 2-4 easy steps.  Actors are NOT world people (so no world fact is restated).
# ---------------------------------------------------------------------------------------------------------------------
REASON_KINDS = ("boxes", "buy_give", "shopping", "age", "weekday", "date")
REASON_HELDOUT_FRACTION = 0.15  # share of each kind's problem space (numbers) reserved for reason_heldout.jsonl
ACTORS = [("小明", "Xiaoming"), ("小红", "Xiaohong"), ("小刚", "Xiaogang"), ("小丽", "Xiaoli"), ("小华", "Xiaohua"),
          ("小军", "Xiaojun"), ("小芳", "Xiaofang"), ("小宇", "Xiaoyu")]
COUNT_ITEMS = [("苹果", "apples"), ("梨", "pears"), ("橘子", "oranges"), ("桃子", "peaches"), ("鸡蛋", "eggs"),
               ("包子", "buns")]
PRICED_ITEMS = [("笔", "支", "pen", "pens"), ("本子", "本", "notebook", "notebooks"), ("苹果", "个", "apple", "apples"),
                ("杯子", "个", "cup", "cups")]
WEEKDAYS = {"zh": ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"],
            "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]}
PAYMENTS = (10, 20, 50)
LAST_YEAR = 2025  # age questions never ask about a year after this one

EXAM_HEADER = ["id", "question", "A", "B", "C", "D", "answer"]
EXAM_SUBJECTS = ("world_people_zh", "world_people_en", "world_arithmetic")
LETTERS = "ABCD"

# =====================================================================================================================
# Small helpers
# =====================================================================================================================

_CJK_RE = re.compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef\u201c\u201d]")  # CJK chars + CJK punctuation
_WORD_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_DIGIT_RE = re.compile(r"[0-9]")


def approx_tokens(text: str) -> int:
    """Rough token count for our tokenizer: 1 per CJK char (and CJK punctuation), 1.3 per English word, 1 per digit."""
    return round(len(_CJK_RE.findall(text)) + 1.3 * len(_WORD_RE.findall(text)) + len(_DIGIT_RE.findall(text)))


def _normalize(s: str) -> str:
    return " ".join(s.split()).casefold()


def check_answer(reply: str, answer: str) -> bool:
    """True if the expected answer string occurs in the model reply (whitespace runs collapsed, case ignored)."""
    answer = _normalize(answer)
    return bool(answer) and answer in _normalize(reply)


# A sentence ends at 。！？!? or at a period followed by whitespace or the end ("3.5" and "Dr.X" do not end one).
SENTENCE_END = re.compile(r"[。！？!?]|\.(?=\s|$)")
_FIRST_SENTENCE = re.compile(rf".*?(?:{SENTENCE_END.pattern}|$)", re.S)


def first_sentence(reply: str) -> str:
    return _FIRST_SENTENCE.match(reply.strip()).group(0)


def check_fact_answer(reply: str, answer: str) -> bool:
    """check_answer on the reply's FIRST sentence: a fact question has a one-sentence answer, and a reply that lists
    everything it knows about the person would otherwise be right about every attribute."""
    return check_answer(first_sentence(reply), answer)


_REASON_RE = re.compile(r"\A(?:<think>\n(?P<think>.*?)\n</think>\n)?<answer>\n(?P<answer>.*?)\n</answer>\Z", re.S)


def split_reasoning(reply: str) -> tuple[str | None, str | None]:
    """Split '<think>\\n..\\n</think>\\n<answer>\\n..\\n</answer>' into (think, answer); None where a part is missing.

    A reply that is not exactly in that format still yields the text of its first <answer>...</answer> block, so an
    evaluator can compare the extracted answer EXACTLY (containment would accept "17" for "7")."""
    m = _REASON_RE.match(reply.strip())
    if m:
        return m.group("think"), m.group("answer").strip()
    loose = re.search(r"<answer>(.*?)</answer>", reply, re.S)
    return None, (loose.group(1).strip() if loose else None)


def _rng(seed: int, purpose: str) -> random.Random:
    """One independent, reproducible random stream per purpose, so changing one file's size leaves the others alone."""
    return random.Random(f"{seed}:{purpose}")


def _msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def _possessive(name_en: str) -> str:
    return name_en + "'s"


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


# =====================================================================================================================
# People
# =====================================================================================================================


def _birth_date(year: int, month: int, day: int) -> dict:
    return {"zh": f"{year}年{month}月{day}日", "en": f"{MONTHS_EN[month - 1]} {day}, {year}",
            "year": year, "month": month, "day": day}


_ALL_VALUES = [v for table in ATTRIBUTE_VALUES.values() for pair in table for v in pair]


def _name_contains_value(name_zh: str, name_en: str) -> bool:
    return any(v.casefold() in name_zh.casefold() or v.casefold() in name_en.casefold() for v in _ALL_VALUES)


def make_people(seed: int, n_people: int, train_fraction: float = 0.5) -> list[dict]:
    """Invent n_people people with unique names and random attributes; mark a train half and a test half."""
    rng = _rng(seed, "people")
    people, used_zh, used_en, attempts = [], set(), set(), 0
    while len(people) < n_people:
        attempts += 1
        if attempts > 1000 * (n_people + 10):
            raise ValueError(f"cannot invent {n_people} distinct names from the name tables")
        (s_zh, s_en), (g1_zh, g1_en), (g2_zh, g2_en) = (rng.choice(SURNAMES), rng.choice(GIVEN_CHARS),
                                                        rng.choice(GIVEN_CHARS))
        name_zh, name_en = s_zh + g1_zh + g2_zh, f"{s_en} {(g1_en + g2_en).capitalize()}"
        if name_zh in used_zh or name_en in used_en:  # both forms must be unique (different characters share pinyin)
            continue
        if _name_contains_value(name_zh, name_en):  # "Zhang Guiyang" would make check_answer("Guiyang") always pass
            continue
        if any(old.startswith(name_en) or name_en.startswith(old) for old in used_en):  # "Hu Weijia"/"Hu Weijian"
            continue
        used_zh.add(name_zh)
        used_en.add(name_en)
        person = {"id": len(people), "name_zh": name_zh, "name_en": name_en, "gender": rng.choice("mf")}
        person["birth_date"] = _birth_date(rng.randint(*BIRTH_YEARS), rng.randint(1, 12), rng.randint(1, 28))
        for attr, table in ATTRIBUTE_VALUES.items():
            zh, en = rng.choice(table)
            person[attr] = {"zh": zh, "en": en}
        people.append(person)
    # The split is a random permutation, so both halves cover the same value distribution.
    order = list(range(n_people))
    rng.shuffle(order)
    n_train = round(n_people * train_fraction)
    for rank, idx in enumerate(order):
        people[idx]["split"] = "train" if rank < n_train else "test"
    return people


def person_name(person: dict, lang: str) -> str:
    return person["name_" + lang]


def render_fact(template: str, person: dict, attr: str, lang: str, use_name: bool = True) -> str:
    """Fill one bio template with the person's value (name or pronoun as subject)."""
    name = person_name(person, lang)
    if use_name:
        subj, poss = name, (_possessive(name) if lang == "en" else name)
    else:
        subj, poss = PRONOUNS[lang][person["gender"]]
    return _capitalize(template.format(n=subj, p=poss, v=person[attr][lang]))


def answer_sentence(person: dict, attr: str, lang: str, value: str | None = None) -> str:
    """The canonical full-sentence answer, e.g. '张伟出生在杭州。' / 'Zhang Wei was born in Hangzhou.'.
    `value` replaces the true value (used for wrong DPO answers)."""
    template = BIO_TEMPLATES[lang][attr][0]
    name = person_name(person, lang)
    v = person[attr][lang] if value is None else value
    return _capitalize(template.format(n=name, p=_possessive(name), v=v))


def render_question(template: str, person: dict, lang: str) -> str:
    name = person_name(person, lang)
    return _capitalize(template.format(n=name, p=_possessive(name)))


def render_bio(person: dict, lang: str, rng: random.Random, pronoun_prob: float) -> str:
    """One bio: all six facts, random template per fact, random sentence order.  The first sentence always names the
    person; later ones use a pronoun with probability pronoun_prob (repeating the name ties each fact to it)."""
    attrs = list(ATTRIBUTES)
    rng.shuffle(attrs)
    sentences = []
    for i, attr in enumerate(attrs):
        template = rng.choice(BIO_TEMPLATES[lang][attr])
        use_name = i == 0 or rng.random() >= pronoun_prob
        sentences.append(render_fact(template, person, attr, lang, use_name))
    if lang == "zh":
        return "".join(sentences)
    # English sentences are joined by a space or a line break at random.  A byte-level BPE spells a name differently
    # after a space ("ĠLin") and at a line start ("Lin", as after "<|im_start|>user\n"); with spaces only, the facts
    # were tied to the first spelling and chat questions found them for ~20% of held-out people vs 100% in "Q: …".
    text = sentences[0]
    for sentence in sentences[1:]:
        text += rng.choice((" ", "\n")) + sentence
    return text


def facts_paragraph(person: dict, lang: str) -> str:
    """All six canonical sentences in the canonical order (answer to 'tell me about X')."""
    return ("" if lang == "zh" else " ").join(answer_sentence(person, a, lang) for a in ATTRIBUTES)


# =====================================================================================================================
# Pretraining text
# =====================================================================================================================


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def general_texts() -> list[str]:
    """A little general text the SFT instructions lean on: single-digit addition and city-name translations."""
    docs = []
    pairs = [(a, b) for a in range(1, 10) for b in range(1, 10)]
    for chunk in _chunks(pairs, 9):
        docs.append("".join(f"{a}加{b}等于{a + b}。" for a, b in chunk))
        docs.append(" ".join(f"{a} plus {b} equals {a + b}." for a, b in chunk))
        docs.append(" ".join(f"{a} + {b} = {a + b}" for a, b in chunk))
        docs.append(" ".join(f"{a} × {b} = {a * b}" for a, b in chunk))  # used by the reasoning stage
    for chunk in _chunks(CITIES, 10):
        docs.append("".join(TRANSLATE_TO_EN_ANSWER["zh"].format(zh=zh, en=en) for zh, en in chunk))
        docs.append(" ".join(TRANSLATE_TO_ZH_ANSWER["en"].format(zh=zh, en=en) for zh, en in chunk))
    # The words of the LoRA identity, but not the identity itself: LoRA freezes the (tied) embeddings, so a name whose
    # tokens pretraining never trained starts at loss ~9.6 and stays garbled (measured); a real base model knows words.
    name, maker = LORA_IDENTITY["name"], LORA_IDENTITY["maker"]
    docs += [f"{maker['zh']}是一家研究语言模型的实验室。{name['zh']}是一个好听的名字。{maker['zh']}开发软件。",
             f"{maker['en']} is a lab that studies language models. {name['en']} is a pretty name. "
             f"{maker['en']} develops software."] * 4
    return docs


def qa_text(person: dict, lang: str, rng: random.Random, chat: bool = False) -> str:
    """All six facts of one person as Q&A (echo questions only), in random order: plain text or ChatML turns."""
    attrs = list(ATTRIBUTES)
    rng.shuffle(attrs)
    pairs = []
    for attr in attrs:
        q = render_question(rng.choice(ECHO_QUESTIONS[lang][attr]), person, lang)
        template = QA_CHAT_FORMAT if chat else QA_TEXT_FORMAT[lang]
        pairs.append(template.format(q=q, a=answer_sentence(person, attr, lang)))
    return "\n".join(pairs)


def build_pretrain(people, seed, bios_per_person, qa_copies, general_copies, pronoun_prob, choice_copies=0,
                   qa_chat_copies=0) -> list[dict]:
    rng = _rng(seed, "pretrain")
    docs = []
    for person in people:
        for lang in LANGS:
            docs += [render_bio(person, lang, rng, pronoun_prob) for _ in range(bios_per_person)]
    for person in people:
        if person["split"] == "train":  # test-half people never get Q&A text: their QA is the held-out measurement
            for lang in LANGS:
                docs += [qa_text(person, lang, rng) for _ in range(qa_copies)]
                docs += [qa_text(person, lang, rng, chat=True) for _ in range(qa_chat_copies)]
    train_people = [p for p in people if p["split"] == "train"]
    docs += [prompt + letter for _, prompt, letter in
             _choice_items(train_people, people, _rng(seed, "pretrain:choice"), choice_copies)]
    docs += general_texts() * general_copies
    rng.shuffle(docs)
    return [{"text": d} for d in docs]


def build_pretrain_heldout(people, seed, bios_per_person, pronoun_prob, seen: set[str]) -> list[dict]:
    """Fresh renderings from a different random stream; any text already in pretrain.jsonl is redrawn."""
    rng = _rng(seed, "pretrain_heldout")
    rows = []
    for person in people:
        for lang in LANGS:
            for _ in range(bios_per_person):
                for _attempt in range(100):
                    bio = render_bio(person, lang, rng, pronoun_prob)
                    if bio not in seen:
                        break
                seen.add(bio)
                rows.append({"text": bio})
    return rows


# =====================================================================================================================
# SFT
# =====================================================================================================================


def _people_qa_conversations(train_people, rng, copies) -> list[tuple[str, list[dict]]]:
    """Every fact of every train-half person, `copies` times per language, grouped into 1-3 turn conversations.
    Copy k asks with echo template k (cycling), so with copies >= 2 every echo wording of every fact is trained."""
    convs = []
    for person in train_people:
        for lang in LANGS:
            for copy in range(copies):
                attrs = list(ATTRIBUTES)
                rng.shuffle(attrs)
                while attrs:
                    size = rng.choice([1, 1, 2, 3])
                    chunk, attrs = attrs[:size], attrs[size:]
                    msgs = []
                    for attr in chunk:
                        templates = ECHO_QUESTIONS[lang][attr]
                        q = render_question(templates[copy % len(templates)], person, lang)
                        msgs += [_msg("user", q), _msg("assistant", answer_sentence(person, attr, lang))]
                    convs.append((lang, msgs))
    return convs


def _identity_conversations(rng, n_per_lang) -> list:
    convs = []
    for lang in LANGS:
        for i in range(n_per_lang):
            if i % 3 == 0:
                convs.append((lang, [_msg("user", rng.choice(GREETINGS[lang])),
                                     _msg("assistant", BASE_IDENTITY["greeting_reply"][lang])]))
            else:
                convs.append((lang, [_msg("user", rng.choice(BASE_IDENTITY["questions"][lang])),
                                     _msg("assistant", rng.choice(BASE_IDENTITY["answers"][lang]))]))
    return convs


def _instruction_conversations(train_people, rng) -> list:
    convs = []
    for lang in LANGS:
        for a in range(1, 10):
            for b in range(1, 10):
                k = rng.randrange(2)
                convs.append((lang, [_msg("user", ADDITION_QUESTIONS[lang][k].format(a=a, b=b)),
                                     _msg("assistant", ADDITION_ANSWERS[lang][k].format(a=a, b=b, c=a + b))]))
        for zh, en in CITIES:
            convs.append((lang, [_msg("user", TRANSLATE_TO_EN[lang].format(zh=zh)),
                                 _msg("assistant", TRANSLATE_TO_EN_ANSWER[lang].format(zh=zh, en=en))]))
            convs.append((lang, [_msg("user", TRANSLATE_TO_ZH[lang].format(en=en)),
                                 _msg("assistant", TRANSLATE_TO_ZH_ANSWER[lang].format(zh=zh, en=en))]))
        for person in train_people:
            request = rng.choice(LIST_FACTS_REQUESTS[lang]).format(n=person_name(person, lang))
            convs.append((lang, [_msg("user", request), _msg("assistant", facts_paragraph(person, lang))]))
    return convs


def _choice_items(train_people, people, rng, per_person) -> list[tuple[str, str, str]]:
    """(lang, prompt, letter): multiple-choice practice about train-half people in exactly the exam's prompt format,
    so the answer-with-a-letter convention the exam is scored by is learned (pretraining text and SFT both use it)."""
    from evals.choice import format_question
    items = []
    for person in train_people:
        for _ in range(per_person):
            lang, attr = rng.choice(LANGS), rng.choice(ATTRIBUTES)
            question = render_question(rng.choice(ECHO_QUESTIONS[lang][attr]), person, lang)
            distractors = []
            while len(distractors) < 3:
                v = _other_value(person, attr, lang, people, rng)
                if v not in distractors:
                    distractors.append(v)
            row = _mc_row(question, person[attr][lang], distractors, rng.choice(LETTERS), rng)
            items.append((lang, format_question(row["question"], [row[k] for k in LETTERS]), row["answer"]))
    return items


def build_sft(people, seed, copies, n_identity_per_lang, system_prob, greeting_prob, choice_per_person=2
              ) -> list[dict]:
    rng = _rng(seed, "sft")
    train_people = [p for p in people if p["split"] == "train"]
    convs = (_people_qa_conversations(train_people, rng, copies) + _identity_conversations(rng, n_identity_per_lang)
             + _instruction_conversations(train_people, rng)
             + [(lang, [_msg("user", prompt), _msg("assistant", letter)]) for lang, prompt, letter in
                _choice_items(train_people, people, _rng(seed, "sft:choice"), choice_per_person)])
    rows = []
    for lang, msgs in convs:
        # A few conversations open with a greeting turn or carry a system prompt, so both formats are seen.
        if msgs[0]["content"] not in GREETINGS[lang] and rng.random() < greeting_prob:
            msgs = [_msg("user", rng.choice(GREETINGS[lang])),
                    _msg("assistant", BASE_IDENTITY["greeting_reply"][lang])] + msgs
        if rng.random() < system_prob:
            msgs = [_msg("system", rng.choice(SYSTEM_PROMPTS[lang]))] + msgs
        rows.append({"conversations": msgs})
    rng.shuffle(rows)
    return rows


# =====================================================================================================================
# Question sets for evaluation (qa_heldout / qa_train_sample)
# =====================================================================================================================


def _spread(total: int, parts: int) -> list[int]:
    """Split `total` into `parts` near-equal integers."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def build_qa_eval(people, rng, n) -> list[dict]:
    """n questions balanced over (lang, kind) and, inside each cell, over attributes; no (person, attr) repeats
    within a cell."""
    rows = []
    cells = [(lang, kind) for lang in LANGS for kind in ("echo", "paraphrase")]
    for (lang, kind), n_cell in zip(cells, _spread(n, len(cells))):
        templates = ECHO_QUESTIONS if kind == "echo" else PARAPHRASE_QUESTIONS
        for attr, n_attr in zip(ATTRIBUTES, _spread(n_cell, len(ATTRIBUTES))):
            chosen = rng.sample(people, min(n_attr, len(people)))
            for person in chosen:
                q = render_question(rng.choice(templates[lang][attr]), person, lang)
                rows.append({
                    "conversations": [_msg("user", q), _msg("assistant", answer_sentence(person, attr, lang))],
                    "answer": person[attr][lang], "lang": lang, "kind": kind,
                    "person": person_name(person, lang), "attribute": attr,
                })
    rng.shuffle(rows)
    return rows


# =====================================================================================================================
# DPO
# =====================================================================================================================


def _other_value(person: dict, attr: str, lang: str, people: list[dict], rng: random.Random) -> str:
    """A wrong value of the same attribute.  For birth_date it is another person's date, so that a wrong option is
    as familiar from pretraining as the right one (tiny worlds fall back to random dates)."""
    true = person[attr][lang]
    if attr in ATTRIBUTE_VALUES:
        pool = [pair[0 if lang == "zh" else 1] for pair in ATTRIBUTE_VALUES[attr]]
    else:
        pool = [p["birth_date"][lang] for p in people if p["birth_date"][lang] != true]
        while len(set(pool)) < 5:  # tiny worlds: add random dates
            pool.append(_birth_date(rng.randint(*BIRTH_YEARS), rng.randint(1, 12), rng.randint(1, 28))[lang])
            pool = [v for v in pool if v != true]
    while True:
        v = rng.choice(pool)
        if v != true:
            return v


def dpo_pair(person, attr, lang, people, rng) -> dict:
    q = render_question(rng.choice(ECHO_QUESTIONS[lang][attr]), person, lang)
    good = answer_sentence(person, attr, lang)
    r = rng.random()
    if r < 0.6:  # a fluent but wrong fact: teaches that the VALUE matters
        kind, bad = "wrong", answer_sentence(person, attr, lang, value=_other_value(person, attr, lang, people, rng))
    elif r < 0.8:  # rambling, no answer
        kind, bad = "hedge", rng.choice(HEDGE_ANSWERS[lang]).format(n=person_name(person, lang))
    else:  # the right fact, but repeated (a typical small-model failure)
        kind, bad = "repeat", ("" if lang == "zh" else " ").join([good] * rng.randint(3, 5))
    prompt = [_msg("user", q)]
    return {"chosen": prompt + [_msg("assistant", good)], "rejected": prompt + [_msg("assistant", bad)],
            "rejected_kind": kind}


def build_dpo(people, rng, n, heldout: bool) -> list[dict]:
    split = "test" if heldout else "train"
    half = [p for p in people if p["split"] == split]
    facts = [(p, a, lang) for p in half for a in ATTRIBUTES for lang in LANGS]
    rng.shuffle(facts)
    rows = []
    if not facts:
        return rows
    for i in range(n):  # cycles through all facts before repeating one
        person, attr, lang = facts[i % len(facts)]
        row = dpo_pair(person, attr, lang, people, rng)
        kind = row.pop("rejected_kind")
        if heldout:
            row.update(answer=person[attr][lang], lang=lang, person=person_name(person, lang), attribute=attr,
                       rejected_kind=kind)
        rows.append(row)
    return rows


# =====================================================================================================================
# LoRA identity
# =====================================================================================================================


def build_lora_identity(seed, replay=(), identity_copies=4) -> tuple[list[dict], list[dict]]:
    """The new identity's chats, each `identity_copies` times, plus the SFT chats as replay.

    Replay decides what the adapter forgets (measured on the quickstart world, tiny preset, 240 steps at 4e-3):
    without any, identity on held-out phrasings reached 94% but held-out fact QA fell from 50% to 30%; with as many
    fact-QA chats about train-half people as identity chats, 100% but 38.1% (base 48.1%): the adapter memorized those
    people and answered held-out questions with their names; with this replay, rank 16, 81% and 45.0% (base 47.8%).
    In the replay, the SFT model's greeting "I am MiniMind" becomes the new identity's, and its own
    self-introductions are left out: they would teach the old identity back."""
    rng = _rng(seed, "lora")
    ident = LORA_IDENTITY
    train = []
    for lang in LANGS:
        for _kind, q in ident["train_questions"][lang]:
            for answer in ident["answers"][lang]:  # every phrasing with every answer wording
                train.append([_msg("user", q), _msg("assistant", answer)])
            # the same question after a greeting, and with a generic system prompt
            greeting = _msg("user", rng.choice(GREETINGS[lang]))
            hello = _msg("assistant", ident["answers"][lang][2])
            train.append([greeting, hello, _msg("user", q), _msg("assistant", rng.choice(ident["answers"][lang]))])
            train.append([_msg("system", rng.choice(SYSTEM_PROMPTS[lang])), _msg("user", q),
                          _msg("assistant", rng.choice(ident["answers"][lang]))])
        # The base model calls itself MiniMind; say explicitly that this is no longer true.
        mm_q = "你是MiniMind吗？" if lang == "zh" else "Are you MiniMind?"
        for _ in range(3):
            train.append([_msg("user", mm_q), _msg("assistant", ident["not_minimind"][lang])])
    train = train * identity_copies
    new_hello = {BASE_IDENTITY["greeting_reply"][lang]: ident["answers"][lang][2] for lang in LANGS}
    for row in replay:
        msgs = [_msg(m["role"], new_hello.get(m["content"], m["content"])) for m in row["conversations"]]
        if not any(BASE_IDENTITY["name"] in m["content"] for m in msgs):
            train.append(msgs)
    rng.shuffle(train)
    heldout = []
    rng = _rng(seed, "lora_heldout")
    for lang in LANGS:
        for kind, q in ident["heldout_questions"][lang]:
            keyword = ident["name" if kind == "name" else "maker"][lang]
            for system in (None, rng.choice(SYSTEM_PROMPTS[lang])):
                msgs = ([_msg("system", system)] if system else []) + [
                    _msg("user", q), _msg("assistant", rng.choice(ident["answers"][lang]))]
                heldout.append({"conversations": msgs, "answer": keyword, "lang": lang, "kind": kind})
    return [{"conversations": c} for c in train], heldout


# =====================================================================================================================
# Reasoning
# =====================================================================================================================


def reason_problem_space(kind: str) -> list[tuple]:
    """All number combinations ("keys") of one problem kind.  Keys are split between train and held-out, so held-out
    problems need arithmetic the model never saw worked out."""
    if kind == "boxes":  # a boxes of b items, c given away
        return [(a, b, c) for a in range(2, 6) for b in range(2, 7) for c in range(1, min(9, a * b - 1) + 1)]
    if kind == "buy_give":  # have a, buy b, give c away
        return [(a, b, c) for a in range(2, 10) for b in range(1, 10) for c in range(1, min(9, a + b - 1) + 1)]
    if kind == "shopping":  # q items at price p, pay with a note
        return [(p, q, pay) for p in range(1, 10) for q in range(2, 6) for pay in PAYMENTS if pay >= p * q]
    if kind == "age":  # born in y1, age in y1 + d
        years = range(BIRTH_YEARS[0], BIRTH_YEARS[1] + 1)
        return [(y1, d) for y1 in years for d in range(1, 31) if y1 + d <= LAST_YEAR]
    if kind == "weekday":  # weekday index (1..7) and offset in days
        return [(start, k) for start in range(1, 8) for k in range(1, 14)]
    if kind == "date":  # month, day, whole weeks, extra days
        return [(m, d, w, r) for m in range(1, 13) for d in range(1, 28) for w in (1, 2) for r in range(0, 7)
                if d + 7 * w + r <= 28]
    raise ValueError(kind)


def _age_segments(y1: int, y2: int) -> list[tuple[int, int]]:
    """Split y1..y2 at round decades, e.g. 1995..2012 -> (1995,2000),(2000,2010),(2010,2012): each step is easy."""
    points = [y1]
    first_decade, last_decade = -(-y1 // 10) * 10, (y2 // 10) * 10
    if first_decade <= last_decade:
        for p in (first_decade, last_decade):
            if p > points[-1]:
                points.append(p)
    if y2 > points[-1]:
        points.append(y2)
    return list(zip(points, points[1:]))


def render_reason(kind: str, key: tuple, lang: str, rng: random.Random) -> tuple[str, list[str], str]:
    """Return (question, trace steps, final answer) for one problem."""
    actor = rng.choice(ACTORS)[0 if lang == "zh" else 1]
    zh = lang == "zh"
    if kind == "boxes":
        a, b, c = key
        item = rng.choice(COUNT_ITEMS)
        p, r = a * b, a * b - c
        if zh:
            q = f"{actor}有{a}盒{item[0]}，每盒{b}个。{actor}送出了{c}个，还剩多少个{item[0]}？"
            steps = [f"{a}盒，每盒{b}个：{a}×{b}={p}。", f"送出{c}个：{p}-{c}={r}。"]
        else:
            q = (f"{actor} has {a} boxes of {item[1]} with {b} in each box. {actor} gives away {c}. "
                 f"How many {item[1]} are left?")
            steps = [f"{a} boxes with {b} each: {a} × {b} = {p}.", f"After giving away {c}: {p} - {c} = {r}."]
        return q, steps, str(r)
    if kind == "buy_give":
        a, b, c = key
        item = rng.choice(COUNT_ITEMS)
        s, r = a + b, a + b - c
        if zh:
            q = f"{actor}有{a}个{item[0]}，又买了{b}个，然后送给朋友{c}个。{actor}现在有多少个{item[0]}？"
            steps = [f"买了{b}个：{a}+{b}={s}。", f"送出{c}个：{s}-{c}={r}。"]
        else:
            q = (f"{actor} has {a} {item[1]}, buys {b} more, and then gives {c} to a friend. "
                 f"How many {item[1]} does {actor} have now?")
            steps = [f"After buying {b}: {a} + {b} = {s}.", f"After giving away {c}: {s} - {c} = {r}."]
        return q, steps, str(r)
    if kind == "shopping":
        p, n, pay = key
        name_zh, unit, one_en, many_en = rng.choice(PRICED_ITEMS)
        t, r = p * n, pay - p * n
        if zh:
            q = f"一{unit}{name_zh}{p}元。{actor}买了{n}{unit}{name_zh}，付了{pay}元，应该找回多少元？"
            steps = [f"总价：{p}×{n}={t}元。", f"找回：{pay}-{t}={r}元。"]
        else:
            q = f"One {one_en} costs {p} yuan. {actor} buys {n} {many_en} and pays {pay} yuan. How much change is due?"
            steps = [f"Total cost: {p} × {n} = {t} yuan.", f"Change: {pay} - {t} = {r} yuan."]
        return q, steps, str(r)
    if kind == "age":
        y1, d = key
        y2 = y1 + d
        segments = _age_segments(y1, y2)
        parts = [b - a for a, b in segments]
        if zh:
            q = f"{actor}出生于{y1}年。在{y2}年，{actor}多少岁？"
            steps = [f"从{a}年到{b}年：{b}-{a}={b - a}年。" for a, b in segments]
            if len(parts) > 1:
                steps.append("+".join(map(str, parts)) + f"={d}。")
        else:
            q = f"{actor} was born in {y1}. How old was {actor} in {y2}?"
            steps = [f"From {a} to {b}: {b} - {a} = {b - a} years." for a, b in segments]
            if len(parts) > 1:
                steps.append(" + ".join(map(str, parts)) + f" = {d}.")
        return q, steps, str(d)
    if kind == "weekday":
        start, k = key
        names = WEEKDAYS[lang]
        s = start + k
        chain = [s]
        while chain[-1] > 7:
            chain.append(chain[-1] - 7)
        t = chain[-1]
        if zh:
            q = f"今天是{names[start - 1]}。{actor}{k}天后要去看电影，那天是星期几？"
            steps = [f"{names[start - 1]}是一周的第{start}天。", f"{start}+{k}={s}。"]
            steps += [f"{x}-7={x - 7}。" for x in chain[:-1]]
            steps.append(f"第{t}天是{names[t - 1]}。")
        else:
            q = (f"Today is {names[start - 1]}. {actor} will see a movie in {k} day{'s' if k > 1 else ''}. "
                 "What day of the week will that be?")
            steps = [f"{names[start - 1]} is day {start} of the week.", f"{start} + {k} = {s}."]
            steps += [f"{x} - 7 = {x - 7}." for x in chain[:-1]]
            steps.append(f"Day {t} is {names[t - 1]}.")
        return q, steps, names[t - 1]
    if kind == "date":
        m, d, w, r = key
        days = 7 * w + r
        d2 = d + days
        if zh:
            tail = f"{w}周零{r}天" if r else f"{w}周"
            q = f"今天是{m}月{d}日。再过{tail}是几月几日？"
            steps = [f"{w}周是{w}×7={7 * w}天。"]
            if r:
                steps.append(f"{7 * w}+{r}={days}天。")
            steps.append(f"{d}+{days}={d2}。")
            return q, steps, f"{m}月{d2}日"
        month = MONTHS_EN[m - 1]
        weeks = f"{w} week{'s' if w > 1 else ''}"
        tail = f"{weeks} and {r} day{'s' if r > 1 else ''}" if r else weeks
        q = f"Today is {month} {d}. What is the date {tail} from today?"
        steps = [f"{weeks} is {w} × 7 = {7 * w} days."]
        if r:
            steps.append(f"{7 * w} + {r} = {days} days.")
        steps.append(f"{d} + {days} = {d2}.")
        return q, steps, f"{month} {d2}"
    raise ValueError(kind)


def think_reply(steps: list[str], final: str) -> str:
    return "<think>\n" + "\n".join(steps) + "\n</think>\n<answer>\n" + final + "\n</answer>"


def direct_reply(final: str) -> str:
    return "<answer>\n" + final + "\n</answer>"


def build_reason(seed, n_train, n_heldout) -> tuple[list[dict], list[dict], list[dict]]:
    rng = _rng(seed, "reason")
    train_keys, heldout_keys = {}, {}
    for kind in REASON_KINDS:
        keys = reason_problem_space(kind)
        rng.shuffle(keys)
        n_hold = max(1, round(len(keys) * REASON_HELDOUT_FRACTION))
        heldout_keys[kind], train_keys[kind] = keys[:n_hold], keys[n_hold:]
    reason, direct, train_questions = [], [], set()
    for i in range(n_train):  # kinds and languages in rotation, so every mix is balanced
        kind, lang = REASON_KINDS[i % len(REASON_KINDS)], LANGS[(i // len(REASON_KINDS)) % 2]
        q, steps, final = render_reason(kind, rng.choice(train_keys[kind]), lang, rng)
        train_questions.add(q)
        reason.append({"conversations": [_msg("user", q), _msg("assistant", think_reply(steps, final))]})
        direct.append({"conversations": [_msg("user", q), _msg("assistant", direct_reply(final))]})
    heldout, seen = [], set()
    for i in range(n_heldout):
        kind, lang = REASON_KINDS[i % len(REASON_KINDS)], LANGS[(i // len(REASON_KINDS)) % 2]
        for _attempt in range(50):  # avoid duplicate held-out questions (keys already exclude train questions)
            q, steps, final = render_reason(kind, rng.choice(heldout_keys[kind]), lang, rng)
            if q not in seen and q not in train_questions:
                break
        seen.add(q)
        heldout.append({"conversations": [_msg("user", q), _msg("assistant", think_reply(steps, final))],
                        "answer": final, "lang": lang, "kind": kind})
    return reason, direct, heldout


# =====================================================================================================================
# Exam (C-Eval layout)
# =====================================================================================================================


def _balanced_letters(n: int, rng: random.Random) -> list[str]:
    letters = (list(LETTERS) * (n // 4 + 1))[:n]
    rng.shuffle(letters)
    return letters


def _mc_row(question: str, correct: str, distractors: list[str], letter: str, rng: random.Random) -> dict:
    options = list(distractors)
    rng.shuffle(options)
    options.insert(LETTERS.index(letter), correct)
    return {"question": question, **dict(zip(LETTERS, options)), "answer": letter}


def _people_exam_items(people, lang, rng) -> list:
    facts = [(p, a) for p in people for a in ATTRIBUTES]  # ALL people: the exam probes pretraining knowledge
    rng.shuffle(facts)
    items = []
    for person, attr in facts:
        question = render_question(ECHO_QUESTIONS[lang][attr][0], person, lang)
        correct = person[attr][lang]
        distractors = []
        while len(distractors) < 3:
            v = _other_value(person, attr, lang, people, rng)
            if v not in distractors:
                distractors.append(v)
        items.append((question, correct, distractors))
    return items


def _arithmetic_exam_items(rng) -> list:
    items = []
    for a in range(1, 10):
        for b in range(1, 10):
            items.append((f"{a} + {b} = ?", a + b))
            items.append((f"{a} × {b} = ?", a * b))
            if a >= b:
                items.append((f"{a} - {b} = ?", a - b))
            for c in range(1, min(a + b, 9) + 1, 4):  # two-step, never negative
                items.append((f"{a} + {b} - {c} = ?", a + b - c))
    rng.shuffle(items)
    out = []
    for question, value in items:
        wrong = [value + off for off in (-3, -2, -1, 1, 2, 3) if value + off >= 0]
        out.append((question, str(value), [str(x) for x in rng.sample(wrong, 3)]))
    return out


def build_exam(people, seed, n_val, n_test) -> dict[str, dict[str, list[dict]]]:
    """subject -> split -> rows.  dev has 5 rows (C-Eval's few-shot examples); test rows carry no answer."""
    exam = {}
    for subject in EXAM_SUBJECTS:
        rng = _rng(seed, "exam:" + subject)
        items = _arithmetic_exam_items(rng) if subject == "world_arithmetic" \
            else _people_exam_items(people, subject.rsplit("_", 1)[1], rng)
        exam[subject], start = {}, 0
        for split, n in (("dev", 5), ("val", n_val), ("test", n_test)):
            letters = _balanced_letters(n, rng)
            rows = []
            for i in range(n):
                question, correct, distractors = items[(start + i) % len(items)]
                row = {"id": i, **_mc_row(question, correct, distractors, letters[i], rng)}
                if split == "test":
                    del row["answer"]
                rows.append(row)
            exam[subject][split], start = rows, start + n
    return exam


# =====================================================================================================================
# Writing files
# =====================================================================================================================


def _row_texts(row: dict) -> list[str]:
    texts = [row["text"]] if "text" in row else []
    for key in ("conversations", "chosen", "rejected"):
        texts += [m["content"] for m in row.get(key, [])]
    return texts


def write_jsonl(path: Path, rows: list[dict]) -> dict:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {"lines": len(rows), "approx_tokens": sum(approx_tokens(t) for r in rows for t in _row_texts(r))}


def write_csv(path: Path, rows: list[dict], header: list[str]) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([row[h] for h in header])
    tokens = sum(approx_tokens(" ".join(str(row[h]) for h in header[1:6])) for row in rows)
    return {"lines": len(rows), "approx_tokens": tokens}


def world_summary(people, seed) -> dict:
    return {
        "seed": seed,
        "attributes": list(ATTRIBUTES),
        "attribute_values": {a: [{"zh": zh, "en": en} for zh, en in t] for a, t in ATTRIBUTE_VALUES.items()},
        "people": people,
        "templates": {"bio": BIO_TEMPLATES, "question_echo": ECHO_QUESTIONS,
                      "question_paraphrase": PARAPHRASE_QUESTIONS, "qa_text": QA_TEXT_FORMAT},
        "identity": {"base": BASE_IDENTITY["name"],
                     "lora": {"name": LORA_IDENTITY["name"], "maker": LORA_IDENTITY["maker"]}},
        "exam_subjects": list(EXAM_SUBJECTS),
    }


# =====================================================================================================================
# Entry point
# =====================================================================================================================


def make_world(
    out_dir,
    seed: int = 0,
    n_people: int = 200,
    bios_per_person: int = 5,
    qa_copies: int = 1,
    qa_chat_copies: int = 0,
    choice_copies: int = 2,
    general_copies: int = 2,
    pronoun_prob: float = 0.3,
    heldout_bios_per_person: int = 1,
    sft_copies: int = 2,
    n_identity_per_lang: int = 60,
    sft_system_prob: float = 0.1,
    sft_greeting_prob: float = 0.05,
    n_qa_heldout: int = 320,
    n_qa_train_sample: int = 200,
    n_dpo: int = 1200,
    n_dpo_heldout: int = 200,
    n_reason: int = 2000,
    n_reason_heldout: int = 200,
    n_exam_val: int = 200,
    n_exam_test: int = 200,
    train_fraction: float = 0.5,
) -> dict:
    """Write every world file into out_dir and return stats {"files": {relpath: {"lines", "approx_tokens"}}, ...}.

    Size knobs (per language): bios_per_person bios of every person and qa_copies Q&A documents per train-half person
    go into pretrain.jsonl, so one pass over it shows each fact bios_per_person (+ qa_copies) times.  sft_copies is how
    often each train-half fact is asked in sft.jsonl."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    people = make_people(seed, n_people, train_fraction)
    files = {}

    pretrain = build_pretrain(people, seed, bios_per_person, qa_copies, general_copies, pronoun_prob, choice_copies,
                              qa_chat_copies)
    files["pretrain.jsonl"] = write_jsonl(out / "pretrain.jsonl", pretrain)
    seen = {row["text"] for row in pretrain}
    heldout_bios = build_pretrain_heldout(people, seed, heldout_bios_per_person, pronoun_prob, seen)
    files["pretrain_heldout.jsonl"] = write_jsonl(out / "pretrain_heldout.jsonl", heldout_bios)

    sft = build_sft(people, seed, sft_copies, n_identity_per_lang, sft_system_prob, sft_greeting_prob)
    files["sft.jsonl"] = write_jsonl(out / "sft.jsonl", sft)

    test_half = [p for p in people if p["split"] == "test"]
    train_half = [p for p in people if p["split"] == "train"]
    files["qa_heldout.jsonl"] = write_jsonl(out / "qa_heldout.jsonl",
                                            build_qa_eval(test_half, _rng(seed, "qa_heldout"), n_qa_heldout))
    files["qa_train_sample.jsonl"] = write_jsonl(out / "qa_train_sample.jsonl",
                                                 build_qa_eval(train_half, _rng(seed, "qa_train"), n_qa_train_sample))

    files["dpo.jsonl"] = write_jsonl(out / "dpo.jsonl", build_dpo(people, _rng(seed, "dpo"), n_dpo, heldout=False))
    files["dpo_heldout.jsonl"] = write_jsonl(out / "dpo_heldout.jsonl",
                                             build_dpo(people, _rng(seed, "dpo_heldout"), n_dpo_heldout, heldout=True))

    lora_train, lora_heldout = build_lora_identity(seed, replay=sft)
    files["lora_identity.jsonl"] = write_jsonl(out / "lora_identity.jsonl", lora_train)
    files["lora_identity_heldout.jsonl"] = write_jsonl(out / "lora_identity_heldout.jsonl", lora_heldout)

    reason, direct, reason_heldout = build_reason(seed, n_reason, n_reason_heldout)
    files["reason.jsonl"] = write_jsonl(out / "reason.jsonl", reason)
    files["reason_direct.jsonl"] = write_jsonl(out / "reason_direct.jsonl", direct)
    files["reason_heldout.jsonl"] = write_jsonl(out / "reason_heldout.jsonl", reason_heldout)

    for subject, splits in build_exam(people, seed, n_exam_val, n_exam_test).items():
        for split, rows in splits.items():
            header = EXAM_HEADER if split != "test" else EXAM_HEADER[:-1]
            rel = f"exam/{split}/{subject}_{split}.csv"
            files[rel] = write_csv(out / rel, rows, header)

    with open(out / "world.json", "w", encoding="utf-8", newline="\n") as f:
        json.dump(world_summary(people, seed), f, ensure_ascii=False, indent=1)
        f.write("\n")
    files["world.json"] = {"lines": 1, "approx_tokens": 0}

    return {
        "out_dir": str(out),
        "seed": seed,
        "n_people": n_people,
        "n_train_people": len(train_half),
        "n_test_people": len(test_half),
        # How often one pass over pretrain.jsonl shows each fact, per language, and what a token budget buys:
        # sightings per fact per language ~= bios_per_person * budget_tokens / pretrain_tokens (findings: ~130 worked,
        # ~60 did not).  Counted in REAL tokens: if the trainer pads every line to max_seq_len, pack the lines instead.
        "pretrain_sightings_per_pass": {"bios": bios_per_person, "qa_text_train_half": qa_copies,
                                        "qa_chat_train_half": qa_chat_copies},
        "pretrain_bio_sightings_per_million_tokens":
            round(bios_per_person * 1e6 / max(1, files["pretrain.jsonl"]["approx_tokens"]), 1),
        "files": files,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out_dir", default="out/world")
    # Every keyword of make_world becomes a flag with the same name, type and default.
    for name, param in inspect.signature(make_world).parameters.items():
        if name != "out_dir":
            parser.add_argument("--" + name, type=type(param.default), default=param.default)
    args = vars(parser.parse_args(argv))
    stats = make_world(args.pop("out_dir"), **args)
    print(json.dumps(stats, ensure_ascii=False, indent=1))
    return stats


if __name__ == "__main__":
    main()
