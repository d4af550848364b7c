"""The invented people: name and value tables, make_people, and rendering one person's facts as text.

Every value exists in a Chinese and an English form.  The tables are chosen so that no value contains another and no
name contains a value: an answer is scored by finding the value in the reply, which must never succeed by accident.
"""
import random

from dataset.world.common import seeded_rng
from dataset.world.templates import BIO_QUESTION_WH, BIO_QUESTION_WH_LEAD, BIO_TEMPLATES

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


def _possessive(name_en: str) -> str:
    return name_en + "'s"


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _birth_date(year: int, month: int, day: int) -> dict:
    return {"zh": f"{year}年{month}月{day}日", "en": f"{MONTHS_EN[month - 1]} {day}, {year}",
            "year": year, "month": month, "day": day}


_ALL_VALUES = [v for table in ATTRIBUTE_VALUES.values() for pair in table for v in pair]


def _name_contains_value(name_zh: str, name_en: str) -> bool:
    return any(v.casefold() in name_zh.casefold() or v.casefold() in name_en.casefold() for v in _ALL_VALUES)


def make_people(seed: int, n_people: int, train_fraction: float = 0.5) -> list[dict]:
    """Invent n_people people with unique names and random attributes; mark a train half and a test half."""
    rng = seeded_rng(seed, "people")
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


def bio_question(template: str, lang: str, attr: str) -> str:
    """A bio template turned into a question template about its value: "{n} attended {v}." → "{n} attended which
    university?"."""
    lead = template.startswith("{v}")
    wh = (BIO_QUESTION_WH_LEAD[lang] if lead else {}).get(attr, BIO_QUESTION_WH[lang][attr])
    if lead and lang == "en":
        wh = wh[0].upper() + wh[1:]
    return template.replace("{v}", wh)[:-1] + ("？" if lang == "zh" else "?")


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
    # after a space ("ĠLin") and at a line start ("Lin", as after "<|im_start|>user\n"); the model must tie each fact
    # to both spellings, because a chat question puts the name at a line start.
    text = sentences[0]
    for sentence in sentences[1:]:
        text += rng.choice((" ", "\n")) + sentence
    return text


def facts_paragraph(person: dict, lang: str) -> str:
    """All six canonical sentences in the canonical order (answer to 'tell me about X')."""
    return ("" if lang == "zh" else " ").join(answer_sentence(person, a, lang) for a in ATTRIBUTES)


def other_value(person: dict, attr: str, lang: str, people: list[dict], rng: random.Random) -> str:
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


def wrong_values(person: dict, attr: str, lang: str, people: list[dict], rng: random.Random, k: int = 3) -> list[str]:
    """k distinct wrong values of one attribute (multiple-choice distractors), drawn with other_value."""
    wrong = []
    while len(wrong) < k:
        v = other_value(person, attr, lang, people, rng)
        if v not in wrong:
            wrong.append(v)
    return wrong
